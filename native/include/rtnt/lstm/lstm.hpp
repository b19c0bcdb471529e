// LSTM layer with Keras semantics (gates i, f, c, o; sigmoid and tanh).
#pragma once

#include <algorithm>
#include <vector>

#include "../core/aligned.hpp"
#include "../core/layer.hpp"
#include "../core/math.hpp"
#include "../core/tap_gemm.hpp"

namespace rtnt {

/// g = x W + h U + b; c' = s(gf) c + s(gi) tanh(gc); h' = s(go) tanh(c'). The input projections of
/// a block are one matrix product; only the recurrent matrix-vector product runs per sample.
class Lstm final : public Layer {
public:
    /// kernel (in, 4u), recurrent (u, 4u), bias (4u).
    Lstm(int in, int units, const std::vector<float>& kernel, const std::vector<float>& recurrent,
         const std::vector<float>& bias)
        : Layer(in, units), g_(padded(4 * units)), wx_(static_cast<std::size_t>(in) * g_, 0.0f),
          wh_(static_cast<std::size_t>(units) * g_, 0.0f), b_(g_, 0.0f), h_(padded(units), 0.0f),
          c_(padded(units), 0.0f), hp_(g_, 0.0f) {
        const int g4 = 4 * units;
        for (int i = 0; i < in; ++i)
            for (int j = 0; j < g4; ++j) wx_[static_cast<std::size_t>(i) * g_ + j] = kernel[static_cast<std::size_t>(i) * g4 + j];
        for (int i = 0; i < units; ++i)
            for (int j = 0; j < g4; ++j) wh_[static_cast<std::size_t>(i) * g_ + j] = recurrent[static_cast<std::size_t>(i) * g4 + j];
        for (int j = 0; j < g4; ++j) b_[j] = bias[j];
    }

    /// The state reset() restores (NAM files store one per layer); zeros unless set. h0 and c0
    /// hold `units` values each.
    void set_initial_state(const std::vector<float>& h0, const std::vector<float>& c0) {
        h0_.assign(h_.size(), 0.0f);
        c0_.assign(c_.size(), 0.0f);
        std::copy(h0.begin(), h0.end(), h0_.begin());
        std::copy(c0.begin(), c0.end(), c0_.begin());
    }

    void prepare(int max_block) override { xp_.assign(static_cast<std::size_t>(max_block) * g_, 0.0f); }
    void reset() noexcept override {
        if (h0_.empty()) {
            std::fill(h_.begin(), h_.end(), 0.0f);
            std::fill(c_.begin(), c_.end(), 0.0f);
        } else {
            std::copy(h0_.begin(), h0_.end(), h_.begin());
            std::copy(c0_.begin(), c0_.end(), c_.begin());
        }
    }

    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        const int u = out_size(), os = padded(u);
        tap_gemm(in, in_stride, 0, 1, in_size(), wx_.data(), g_, b_.data(), xp_.data(), g_, n);
        float* RTNT_RESTRICT h = h_.data();
        float* RTNT_RESTRICT c = c_.data();
        float* RTNT_RESTRICT hp = hp_.data();
        const float* RTNT_RESTRICT wh = wh_.data();
        for (int t = 0; t < n; ++t) {
            const float* RTNT_RESTRICT xp = xp_.data() + static_cast<long>(t) * g_;
            for (int j = 0; j < g_; ++j) hp[j] = xp[j];
            for (int i = 0; i < u; ++i) {
                const float hv = h[i];
                const float* row = wh + static_cast<long>(i) * g_;
                for (int j = 0; j < g_; ++j) hp[j] = madd(hv, row[j], hp[j]);
            }
            float* RTNT_RESTRICT y = out + static_cast<long>(t) * os;
            // Gate by gate, each loop a plain elementwise one that vectorises.
            for (int j = 0; j < 2 * u; ++j) hp[j] = fast_sigmoid(hp[j]);                  // i, f
            for (int j = 2 * u; j < 3 * u; ++j) hp[j] = fast_tanh(hp[j]);                 // c candidate
            for (int j = 3 * u; j < 4 * u; ++j) hp[j] = fast_sigmoid(hp[j]);              // o
            for (int j = 0; j < u; ++j) c[j] = madd(hp[u + j], c[j], hp[j] * hp[2 * u + j]);
            for (int j = 0; j < u; ++j) {
                h[j] = hp[3 * u + j] * fast_tanh(c[j]);
                y[j] = h[j];
            }
            for (int j = u; j < os; ++j) y[j] = 0.0f;
        }
    }

    double macs_per_sample() const noexcept override { return 4.0 * out_size() * (in_size() + out_size()); }

private:
    int g_;
    FloatVec wx_, wh_, b_, h_, c_, hp_, xp_, h0_, c0_;
};

}  // namespace rtnt
