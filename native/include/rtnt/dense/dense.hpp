// Dense (and time-distributed dense) layer: y = act(x W + b) per sample, one matrix product per block.
#pragma once

#include <vector>

#include "../activation/activation.hpp"
#include "../core/aligned.hpp"
#include "../core/layer.hpp"
#include "../core/tap_gemm.hpp"

namespace rtnt {

class Dense final : public Layer {
public:
    /// kernel is (in, out) row-major; bias has `out` entries or is empty (no bias).
    Dense(int in, int out, const std::vector<float>& kernel, const std::vector<float>& bias, Activation act)
        : Layer(in, out), np_(padded(out)), w_(static_cast<std::size_t>(in) * np_, 0.0f), b_(np_, 0.0f), act_(act) {
        for (int i = 0; i < in; ++i)
            for (int o = 0; o < out; ++o) w_[static_cast<std::size_t>(i) * np_ + o] = kernel[static_cast<std::size_t>(i) * out + o];
        for (std::size_t o = 0; o < bias.size(); ++o) b_[o] = bias[o];
    }

    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        tap_gemm(in, in_stride, 0, 1, in_size(), w_.data(), np_, b_.data(), out, np_, n);
        apply_activation(act_, out, n, np_, out_size());
    }

    double macs_per_sample() const noexcept override { return double(in_size()) * out_size(); }

private:
    int np_;
    FloatVec w_;
    FloatVec b_;
    Activation act_;
};

}  // namespace rtnt
