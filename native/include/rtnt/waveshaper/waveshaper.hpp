// Memoryless tanh waveshaper (rtnt gray-box `waveshaper`).
#pragma once

#include <cmath>
#include <vector>

#include "../core/aligned.hpp"
#include "../core/layer.hpp"
#include "../core/math.hpp"
#include "../graybox/controller.hpp"

namespace rtnt {

/// Mono y = gain * (tanh(drive * x + bias) - tanh(bias)) in float32, tanh by `fast_tanh` (within 4e-7 absolute
/// of the exact one, so within 4e-7 * gain of the reference runtime); subtracting the same fast_tanh(bias) keeps
/// silence exactly silent. Controllers (parameter 0 drive_db, 1 bias, 2 gain_db) set
/// their parameters from the controls, recomputed (double, then float) only when a control value changes.
class Waveshaper final : public Layer {
public:
    Waveshaper(float drive, float bias, float gain, std::vector<Controller> controllers = {}, int num_controls = 0)
        : Layer(1, 1), drive_(drive), bias_(bias), gain_(gain), tanh_bias_(fast_tanh(bias)),
          controllers_(std::move(controllers)), watch_(num_controls) {}

    void reset() noexcept override { watch_.reset(); }

    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        const int s = padded(1);
        for (int t = 0; t < n; ++t)
            store_mono(out, s, t, gain_ * (fast_tanh(drive_ * in[static_cast<long>(t) * in_stride] + bias_) - tanh_bias_));
    }

    bool takes_controls() const noexcept override { return !controllers_.empty(); }

    void process_controlled(const float* in, int in_stride, const float* controls, int controls_stride, float* out,
                            int n) noexcept override {
        const int s = padded(1);
        for (int t = 0; t < n; ++t) {
            const float* c = controls + static_cast<long>(t) * controls_stride;
            if (watch_.changed(c)) update(c);
            store_mono(out, s, t, gain_ * (fast_tanh(drive_ * in[static_cast<long>(t) * in_stride] + bias_) - tanh_bias_));
        }
    }

    double macs_per_sample() const noexcept override { return 2.0; }

private:
    void update(const float* c) noexcept {
        for (const Controller& k : controllers_) {
            const double v = k.value(c);
            if (k.parameter == 0) drive_ = static_cast<float>(db_to_linear(v));
            if (k.parameter == 1) bias_ = static_cast<float>(v);
            if (k.parameter == 2) gain_ = static_cast<float>(db_to_linear(v));
        }
        tanh_bias_ = fast_tanh(bias_);
    }

    float drive_, bias_, gain_, tanh_bias_;
    std::vector<Controller> controllers_;
    ControlWatch watch_;
};

}  // namespace rtnt
