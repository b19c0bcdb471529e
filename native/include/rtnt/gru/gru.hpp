// GRU layer with Keras semantics (reset_after=True, gates z, r, h; sigmoid and tanh).
#pragma once

#include <algorithm>
#include <vector>

#include "../core/aligned.hpp"
#include "../core/layer.hpp"
#include "../core/math.hpp"
#include "../core/tap_gemm.hpp"

namespace rtnt {

/// z = s(x Wz + h Uz + b), r = s(x Wr + h Ur + b), c = tanh(x Wh + bih + r (h Uh + brh)),
/// h' = z h + (1 - z) c. The input projections of a whole block are one matrix product; only the
/// recurrent matrix-vector product runs per sample.
class Gru final : public Layer {
public:
    /// kernel (in, 3u), recurrent (u, 3u), bias (2, 3u): row 0 input bias, row 1 recurrent bias.
    Gru(int in, int units, const std::vector<float>& kernel, const std::vector<float>& recurrent,
        const std::vector<float>& bias)
        : Layer(in, units), g_(padded(3 * units)), wx_(static_cast<std::size_t>(in) * g_, 0.0f),
          wh_(static_cast<std::size_t>(units) * g_, 0.0f), bx_(g_, 0.0f), bh_(g_, 0.0f), h_(padded(units), 0.0f),
          hp_(g_, 0.0f) {
        const int g3 = 3 * units;
        for (int i = 0; i < in; ++i)
            for (int j = 0; j < g3; ++j) wx_[static_cast<std::size_t>(i) * g_ + j] = kernel[static_cast<std::size_t>(i) * g3 + j];
        for (int i = 0; i < units; ++i)
            for (int j = 0; j < g3; ++j) wh_[static_cast<std::size_t>(i) * g_ + j] = recurrent[static_cast<std::size_t>(i) * g3 + j];
        for (int j = 0; j < g3; ++j) {
            bx_[j] = bias[j];
            bh_[j] = bias[g3 + j];
        }
    }

    void prepare(int max_block) override { xp_.assign(static_cast<std::size_t>(max_block) * g_, 0.0f); }
    void reset() noexcept override { std::fill(h_.begin(), h_.end(), 0.0f); }

    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        const int u = out_size(), os = padded(u);
        tap_gemm(in, in_stride, 0, 1, in_size(), wx_.data(), g_, bx_.data(), xp_.data(), g_, n);
        float* RTNT_RESTRICT h = h_.data();
        float* RTNT_RESTRICT hp = hp_.data();
        const float* RTNT_RESTRICT wh = wh_.data();
        const float* RTNT_RESTRICT bh = bh_.data();
        for (int t = 0; t < n; ++t) {
            for (int j = 0; j < g_; ++j) hp[j] = bh[j];
            for (int i = 0; i < u; ++i) {
                const float hv = h[i];
                const float* row = wh + static_cast<long>(i) * g_;
                for (int j = 0; j < g_; ++j) hp[j] = madd(hv, row[j], hp[j]);
            }
            const float* RTNT_RESTRICT xp = xp_.data() + static_cast<long>(t) * g_;
            float* RTNT_RESTRICT y = out + static_cast<long>(t) * os;
            // Gate by gate, each loop a plain elementwise one that vectorises: z and r, then the
            // candidate c (reset gate applied to the recurrent part), then the state update.
            for (int j = 0; j < 2 * u; ++j) hp[j] = fast_sigmoid(xp[j] + hp[j]);
            for (int j = 0; j < u; ++j) hp[2 * u + j] = fast_tanh(madd(hp[u + j], hp[2 * u + j], xp[2 * u + j]));
            for (int j = 0; j < u; ++j) {
                h[j] = madd(hp[j], h[j] - hp[2 * u + j], hp[2 * u + j]);  // z h + (1 - z) c
                y[j] = h[j];
            }
            for (int j = u; j < os; ++j) y[j] = 0.0f;
        }
    }

    double macs_per_sample() const noexcept override { return 3.0 * out_size() * (in_size() + out_size()); }

private:
    int g_;
    FloatVec wx_, wh_, bx_, bh_, h_, hp_, xp_;
};

}  // namespace rtnt
