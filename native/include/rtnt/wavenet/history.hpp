// A causal conv's input history: a mirrored ring, so look-back plus the current piece is always
// one contiguous span of rows.
#pragma once

#include <algorithm>
#include <cstring>

#include "../core/aligned.hpp"

namespace rtnt {
namespace wavenet {

/// Rows of `stride` floats. Capacity cap = lookback + the largest piece; every row is stored at p
/// and p + cap, so the window of lookback past rows plus the n rows just stored is contiguous
/// whatever the write position.
class History {
public:
    /// `slack` floats after the mirrored rows may be read past a window's end (and are never written).
    void prepare(int lookback, int stride, int max_rows, int slack = 0) {
        lookback_ = lookback;
        stride_ = stride;
        cap_ = lookback + max_rows;
        buf_.assign(static_cast<std::size_t>(2) * cap_ * stride_ + static_cast<std::size_t>(slack), 0.0f);
        pos_ = 0;
    }

    void reset() noexcept {
        std::fill(buf_.begin(), buf_.end(), 0.0f);
        pos_ = 0;
    }

    /// Appends n rows (source row stride `src_stride` >= stride) after the newest one.
    void store(const float* src, int src_stride, int n) noexcept {
        for (int done = 0; done < n;) {
            const int m = std::min(n - done, cap_ - pos_);
            copy_rows(src + static_cast<long>(done) * src_stride, src_stride, row(pos_), m);
            copy_rows(src + static_cast<long>(done) * src_stride, src_stride, row(pos_ + cap_), m);
            done += m;
            pos_ = pos_ + m == cap_ ? 0 : pos_ + m;
        }
    }

    /// Sets every row, past and present, to `src`: the history of a constant input.
    void fill(const float* src) noexcept {
        for (int p = 0; p < 2 * cap_; ++p) std::memcpy(row(p), src, sizeof(float) * static_cast<std::size_t>(stride_));
    }

    /// The first row of the window that ends with the n rows stored last (lookback + n rows).
    const float* window(int n) const noexcept {
        int start = pos_ - n - lookback_;  // >= -cap_, as n <= max_rows
        if (start < 0) start += cap_;
        return buf_.data() + static_cast<long>(start) * stride_;
    }

    /// The n rows stored last (the end of window(n)).
    const float* newest(int n) const noexcept { return window(n) + static_cast<long>(lookback_) * stride_; }

    /// Where row j of the next rows to be stored goes (its mirror is mirror() floats further);
    /// after writing rows 0..n-1 there, commit(n) makes them the newest.
    float* next_row(int j) noexcept {
        const int p = pos_ + j;
        return row(p >= cap_ ? p - cap_ : p);
    }
    long mirror() const noexcept { return static_cast<long>(cap_) * stride_; }
    void commit(int n) noexcept {
        pos_ += n;  // n <= cap_
        if (pos_ >= cap_) pos_ -= cap_;
    }

    /// Appends one row of a history with row stride 1: the sample v.
    void store_one(float v) noexcept {
        buf_[static_cast<std::size_t>(pos_)] = v;
        buf_[static_cast<std::size_t>(pos_ + cap_)] = v;
        commit(1);
    }

    std::size_t floats() const noexcept { return buf_.size(); }

private:
    float* row(int p) noexcept { return buf_.data() + static_cast<long>(p) * stride_; }

    void copy_rows(const float* src, int src_stride, float* dst, int m) const noexcept {
        if (src_stride == stride_) {
            std::memcpy(dst, src, sizeof(float) * static_cast<std::size_t>(m) * stride_);
        } else {
            for (int t = 0; t < m; ++t)
                std::memcpy(dst + static_cast<long>(t) * stride_, src + static_cast<long>(t) * src_stride,
                            sizeof(float) * static_cast<std::size_t>(stride_));
        }
    }

    int lookback_ = 0, stride_ = 0, cap_ = 0, pos_ = 0;
    FloatVec buf_;
};

}  // namespace wavenet
}  // namespace rtnt
