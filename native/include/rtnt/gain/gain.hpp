// Linear gain (rtnt gray-box `gain`).
#pragma once

#include "../core/aligned.hpp"
#include "../core/layer.hpp"

namespace rtnt {

/// Mono y = gain * x (gain linear, not dB).
class Gain final : public Layer {
public:
    explicit Gain(float gain) : Layer(1, 1), gain_(gain) {}

    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        const int s = padded(1);
        for (int t = 0; t < n; ++t) store_mono(out, s, t, gain_ * in[static_cast<long>(t) * in_stride]);
    }

    double macs_per_sample() const noexcept override { return 1.0; }

private:
    float gain_;
};

}  // namespace rtnt
