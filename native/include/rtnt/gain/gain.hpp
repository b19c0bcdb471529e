// Linear gain (rtnt gray-box `gain`).
#pragma once

#include <vector>

#include "../core/aligned.hpp"
#include "../core/layer.hpp"
#include "../graybox/controller.hpp"

namespace rtnt {

/// Mono y = gain * x (gain linear, not dB). A controller (parameter 0, gain_db) sets the gain from the
/// controls, recomputed only when a control value changes.
class Gain final : public Layer {
public:
    explicit Gain(float gain, std::vector<Controller> controllers = {}, int num_controls = 0)
        : Layer(1, 1), gain_(gain), controllers_(std::move(controllers)), watch_(num_controls) {}

    void reset() noexcept override { watch_.reset(); }

    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        const int s = padded(1);
        for (int t = 0; t < n; ++t) store_mono(out, s, t, gain_ * in[static_cast<long>(t) * in_stride]);
    }

    bool takes_controls() const noexcept override { return !controllers_.empty(); }

    void process_controlled(const float* in, int in_stride, const float* controls, int controls_stride, float* out,
                            int n) noexcept override {
        const int s = padded(1);
        for (int t = 0; t < n; ++t) {
            const float* c = controls + static_cast<long>(t) * controls_stride;
            if (watch_.changed(c)) gain_ = static_cast<float>(db_to_linear(controllers_[0].value(c)));
            store_mono(out, s, t, gain_ * in[static_cast<long>(t) * in_stride]);
        }
    }

    double macs_per_sample() const noexcept override { return 1.0; }

private:
    float gain_;
    std::vector<Controller> controllers_;
    ControlWatch watch_;
};

}  // namespace rtnt
