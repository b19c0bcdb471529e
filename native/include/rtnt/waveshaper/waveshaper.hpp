// Memoryless tanh waveshaper (rtnt gray-box `waveshaper`).
#pragma once

#include <cmath>

#include "../core/aligned.hpp"
#include "../core/layer.hpp"

namespace rtnt {

/// Mono y = gain * (tanh(drive * x + bias) - tanh(bias)), in float32 as the reference runtime computes it;
/// subtracting tanh(bias) keeps silence silent.
class Waveshaper final : public Layer {
public:
    Waveshaper(float drive, float bias, float gain)
        : Layer(1, 1), drive_(drive), bias_(bias), gain_(gain), tanh_bias_(std::tanh(bias)) {}

    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        const int s = padded(1);
        for (int t = 0; t < n; ++t)
            store_mono(out, s, t, gain_ * (std::tanh(drive_ * in[static_cast<long>(t) * in_stride] + bias_) - tanh_bias_));
    }

    double macs_per_sample() const noexcept override { return 2.0; }

private:
    float drive_, bias_, gain_, tanh_bias_;
};

}  // namespace rtnt
