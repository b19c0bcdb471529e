// Causal dilated 1-D convolution (Keras padding="causal", groups), streamed block by block.
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "../activation/activation.hpp"
#include "../core/aligned.hpp"
#include "../core/layer.hpp"
#include "../core/tap_gemm.hpp"

namespace rtnt {

/// y[t] = act(b + sum_k W[k] x[t - (K-1-k) d]), or act(e(b + sum_k ...)) with an epilogue e (FiLM).
///
/// The input history lives in a mirrored ring of capacity cap = (K-1) d + max_block rows (the
/// model prepares layers for one piece of kPieceFrames, not for the host's block): every
/// row is stored at p and p + cap, so the window of (K-1) d past rows plus the current block is
/// always one contiguous span, whatever the write position. The block is then a single tap_gemm
/// over that span; the per-sample cost is the same for every block and every position.
class Conv1d final : public Layer {
public:
    /// kernel is (K, in/groups, out) row-major as Keras stores it; bias has `out` entries or is empty.
    Conv1d(int in, int out, int kernel_size, int dilation, int groups, const std::vector<float>& kernel,
           const std::vector<float>& bias, Activation act)
        : Layer(in, out), K_(kernel_size), d_(dilation), groups_(groups), np_(padded(out)),
          w_(static_cast<std::size_t>(kernel_size) * in * np_, 0.0f), b_(np_, 0.0f), act_(act) {
        const int in_g = in / groups, out_g = out / groups;
        for (int k = 0; k < K_; ++k)
            for (int o = 0; o < out; ++o) {
                const int g = o / out_g;
                for (int ii = 0; ii < in_g; ++ii) {
                    const int i = g * in_g + ii;
                    w_[(static_cast<std::size_t>(k) * in + i) * np_ + o] =
                        kernel[(static_cast<std::size_t>(k) * in_g + ii) * out + o];
                }
            }
        for (std::size_t o = 0; o < bias.size(); ++o) b_[o] = bias[o];
    }

    /// Applies `e` to every output row before the activation (FiLM); the conv owns it.
    void set_epilogue(std::unique_ptr<Epilogue> e) noexcept { epilogue_ = std::move(e); }

    void prepare(int max_block) override {
        if (lookback() == 0) return;
        cap_ = lookback() + max_block;
        ring_.assign(static_cast<std::size_t>(2) * cap_ * in_size(), 0.0f);
        pos_ = 0;
    }

    void reset() noexcept override {
        std::fill(ring_.begin(), ring_.end(), 0.0f);
        pos_ = 0;
    }

    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        const int cin = in_size();
        if (lookback() == 0) {
            tap_gemm(in, in_stride, 0, 1, cin, w_.data(), np_, b_.data(), out, np_, n);
        } else {
            // Append the block to the ring (and its mirror) in at most two contiguous pieces.
            float* ring = ring_.data();
            int done = 0;
            while (done < n) {
                const int m = std::min(n - done, cap_ - pos_);
                store_rows(in + static_cast<long>(done) * in_stride, in_stride, ring + static_cast<long>(pos_) * cin, m);
                store_rows(in + static_cast<long>(done) * in_stride, in_stride, ring + static_cast<long>(pos_ + cap_) * cin, m);
                done += m;
                pos_ = pos_ + m == cap_ ? 0 : pos_ + m;
            }
            // The window starts lookback() rows before the block's first row: (pos_ - n - lookback()) mod cap_.
            int start = (pos_ - n - lookback()) % cap_;
            if (start < 0) start += cap_;
            tap_gemm(ring + static_cast<long>(start) * cin, cin, d_ * cin, K_, cin, w_.data(), np_, b_.data(), out, np_, n);
        }
        if (epilogue_) epilogue_->apply(out, np_, out_size(), n);
        apply_activation(act_, out, n, np_, out_size());
    }

    double macs_per_sample() const noexcept override {
        return double(K_) * (in_size() / groups_) * out_size();
    }
    int lookback() const noexcept override { return (K_ - 1) * d_; }

private:
    /// Copies m rows of in_size() values into dst (row stride in_size()): one memcpy when the
    /// source rows are already packed, which they are for channel counts that are multiples of 8.
    void store_rows(const float* src, int src_stride, float* dst, int m) const noexcept {
        const int cin = in_size();
        if (src_stride == cin) {
            std::memcpy(dst, src, sizeof(float) * static_cast<std::size_t>(m) * cin);
        } else {
            for (int t = 0; t < m; ++t)
                for (int c = 0; c < cin; ++c) dst[static_cast<long>(t) * cin + c] = src[static_cast<long>(t) * src_stride + c];
        }
    }

    int K_, d_, groups_, np_;
    FloatVec w_;
    FloatVec b_;
    Activation act_;
    std::unique_ptr<Epilogue> epilogue_;
    FloatVec ring_;
    int cap_ = 0;
    int pos_ = 0;
};

}  // namespace rtnt
