// Long causal FIR (rtnt gray-box `fir`): direct form, or uniformly partitioned FFT convolution with a
// direct-form head, both with zero latency.
#pragma once

#include <algorithm>
#include <cstring>
#include <vector>

#include "../core/aligned.hpp"
#include "../core/fft.hpp"
#include "../core/math.hpp"
#include "../core/layer.hpp"

namespace rtnt {

namespace detail {

/// sum_i a[i] b[i] over n floats in eight independent lanes (vectorised without reassociating flags).
inline float dot8(const float* RTNT_RESTRICT a, const float* RTNT_RESTRICT b, int n) noexcept {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

/// The last `taps` inputs in a double-length ring: each sample is written at w and w + taps, so the
/// window oldest..newest is always the contiguous span starting at w + 1 (no wrap, no shifting).
class TapHistory {
public:
    explicit TapHistory(int taps) : taps_(taps), buf_(2 * static_cast<std::size_t>(taps), 0.0f) {}
    void reset() noexcept {
        std::fill(buf_.begin(), buf_.end(), 0.0f);
        w_ = 0;
    }
    /// Pushes x and returns the window of the last `taps` inputs, oldest first.
    const float* push(float x) noexcept {
        buf_[w_] = x;
        buf_[w_ + taps_] = x;
        const float* window = buf_.data() + w_ + 1;
        w_ = w_ + 1 == taps_ ? 0 : w_ + 1;
        return window;
    }

private:
    int taps_;
    int w_ = 0;
    FloatVec buf_;
};

}  // namespace detail

/// How a Fir layer convolves.
enum class FirMethod { Direct, Partitioned };

/// Mono y[t] = sum_k h[k] x[t - k], causal, zero latency, sample-exact for any block cut.
///
/// Direct: a dot product of the reversed taps with a double-length history ring per sample (K MACs/sample).
/// Partitioned (uniformly partitioned overlap-save, UPOLS, with partitions of P = kPartition taps and
/// real FFTs of size 2P): taps [0, P) run as the direct form; taps [P, K) are split into partitions of P.
/// Every output sample of input block j reads partition p >= 1 only from blocks <= j - 1, so once block j - 1
/// is complete its spectrum joins a frequency-domain delay line and one inverse FFT of
/// sum_p X[j - p] H[p] gives the tail of all P outputs of block j: no latency, no look-ahead. Cost per P
/// samples: one forward and one inverse FFT of 2P plus (K/P - 1)(P + 1) complex MACs, plus P MACs per
/// sample for the head; the work comes in one burst per P samples.
class Fir final : public Layer {
public:
    static constexpr int kPartition = 64;
    /// The tap count from which `automatic` picks the partitioned form (docs/benchmarks/graybox_native.md).
    static constexpr int kPartitionedFromTaps = 512;

    static FirMethod automatic(int taps) noexcept {
        return taps >= kPartitionedFromTaps ? FirMethod::Partitioned : FirMethod::Direct;
    }

    Fir(const std::vector<float>& taps, FirMethod method)
        : Layer(1, 1),
          taps_(static_cast<int>(taps.size())),
          method_(taps_ <= kPartition ? FirMethod::Direct : method),
          head_taps_(method_ == FirMethod::Direct ? taps_ : kPartition),
          head_(head_taps_),
          fft_(2 * kPartition) {
        reversed_.assign(head_taps_, 0.0f);
        for (int i = 0; i < head_taps_; ++i) reversed_[i] = taps[head_taps_ - 1 - i];
        if (method_ == FirMethod::Partitioned) build_partitions(taps);
    }

    FirMethod method() const noexcept { return method_; }
    int taps() const noexcept { return taps_; }

    void reset() noexcept override {
        head_.reset();
        std::fill(block_.begin(), block_.end(), 0.0f);
        std::fill(tail_.begin(), tail_.end(), 0.0f);
        std::fill(fdl_re_.begin(), fdl_re_.end(), 0.0f);
        std::fill(fdl_im_.begin(), fdl_im_.end(), 0.0f);
        pos_ = 0;
        newest_ = 0;
    }

    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        const int s = padded(1);
        const float* h = reversed_.data();
        if (method_ == FirMethod::Direct) {
            for (int t = 0; t < n; ++t)
                store_mono(out, s, t, detail::dot8(h, head_.push(in[static_cast<long>(t) * in_stride]), head_taps_));
            return;
        }
        for (int t = 0; t < n; ++t) {
            const float x = in[static_cast<long>(t) * in_stride];
            block_[kPartition + pos_] = x;
            store_mono(out, s, t, detail::dot8(h, head_.push(x), head_taps_) + tail_[pos_]);
            if (++pos_ == kPartition) next_block();
        }
    }

    double macs_per_sample() const noexcept override { return double(taps_); }
    int lookback() const noexcept override { return taps_ - 1; }

private:
    void build_partitions(const std::vector<float>& taps) {
        const int bins = fft_.bins();
        parts_ = (taps_ + kPartition - 1) / kPartition - 1;  // tail partitions
        h_re_.assign(static_cast<std::size_t>(parts_) * bins, 0.0f);
        h_im_.assign(static_cast<std::size_t>(parts_) * bins, 0.0f);
        FloatVec frame(2 * kPartition, 0.0f);
        for (int p = 0; p < parts_; ++p) {
            std::fill(frame.begin(), frame.end(), 0.0f);
            const int first = (p + 1) * kPartition;
            for (int k = 0; k < kPartition && first + k < taps_; ++k) frame[k] = taps[first + k];
            fft_.forward(frame.data(), h_re_.data() + static_cast<std::size_t>(p) * bins,
                         h_im_.data() + static_cast<std::size_t>(p) * bins);
        }
        fdl_re_.assign(h_re_.size(), 0.0f);
        fdl_im_.assign(h_im_.size(), 0.0f);
        block_.assign(2 * kPartition, 0.0f);
        frame_.assign(2 * kPartition, 0.0f);
        tail_.assign(kPartition, 0.0f);
        acc_re_.assign(bins, 0.0f);
        acc_im_.assign(bins, 0.0f);
    }

    /// Block j - 1 is complete in block_[P, 2P): add its spectrum to the delay line and compute the tail
    /// (partitions 1..) of the next P outputs.
    void next_block() noexcept {
        const int bins = fft_.bins();
        newest_ = newest_ == 0 ? parts_ - 1 : newest_ - 1;
        fft_.forward(block_.data(), fdl_re_.data() + static_cast<std::size_t>(newest_) * bins,
                     fdl_im_.data() + static_cast<std::size_t>(newest_) * bins);
        std::fill(acc_re_.begin(), acc_re_.end(), 0.0f);
        std::fill(acc_im_.begin(), acc_im_.end(), 0.0f);
        float* RTNT_RESTRICT ar = acc_re_.data();
        float* RTNT_RESTRICT ai = acc_im_.data();
        for (int p = 0; p < parts_; ++p) {  // partition p + 1 meets the spectrum p blocks older than the newest
            int slot = newest_ + p;
            if (slot >= parts_) slot -= parts_;
            const float* RTNT_RESTRICT xr = fdl_re_.data() + static_cast<std::size_t>(slot) * bins;
            const float* RTNT_RESTRICT xi = fdl_im_.data() + static_cast<std::size_t>(slot) * bins;
            const float* RTNT_RESTRICT hr = h_re_.data() + static_cast<std::size_t>(p) * bins;
            const float* RTNT_RESTRICT hi = h_im_.data() + static_cast<std::size_t>(p) * bins;
            for (int k = 0; k < bins; ++k) {
                ar[k] += xr[k] * hr[k] - xi[k] * hi[k];
                ai[k] += xr[k] * hi[k] + xi[k] * hr[k];
            }
        }
        fft_.inverse(ar, ai, frame_.data());
        const float scale = 1.0f / static_cast<float>(2 * kPartition);
        for (int r = 0; r < kPartition; ++r) tail_[r] = frame_[kPartition + r] * scale;
        std::memcpy(block_.data(), block_.data() + kPartition, sizeof(float) * kPartition);
        pos_ = 0;
    }

    int taps_;
    FirMethod method_;
    int head_taps_;
    detail::TapHistory head_;
    RealFft fft_;
    FloatVec reversed_;
    int parts_ = 0;
    FloatVec h_re_, h_im_, fdl_re_, fdl_im_, block_, frame_, tail_, acc_re_, acc_im_;
    int pos_ = 0;
    int newest_ = 0;
};

}  // namespace rtnt
