// Knob controllers of gray-box layers (rtnt gray-box JSON `controllers`, docs/graybox_format.md).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace rtnt {

/// How a controller's raw value maps into its parameter's range (the Keras blocks' constraint mappings):
/// Sigmoid min + (max - min) s, LogSigmoid min (max / min)^s with s = sigmoid(raw), both clipped to
/// [min, max]; Tanh max tanh(raw).
enum class ControlMapping { Sigmoid, LogSigmoid, Tanh };

/// One knob-controlled parameter of a layer: value = map(raw + sum_k weights[k] c[k]) in double precision.
struct Controller {
    int parameter = 0;  ///< the layer's own index of the parameter (see each layer)
    int section = -1;   ///< the biquad section it sets; -1 for other layers
    ControlMapping mapping = ControlMapping::Tanh;
    double minimum = 0.0, maximum = 1.0, raw = 0.0;
    std::vector<double> weights;  ///< one per control

    double value(const float* controls) const noexcept {
        double acc = 0.0;
        for (std::size_t k = 0; k < weights.size(); ++k) acc += double(controls[k]) * weights[k];
        const double r = raw + acc;
        if (mapping == ControlMapping::Tanh) return maximum * std::tanh(r);
        const double s = 0.5 + 0.5 * std::tanh(0.5 * r);
        const double v = mapping == ControlMapping::Sigmoid ? minimum + (maximum - minimum) * s
                                                            : minimum * std::exp(std::log(maximum / minimum) * s);
        return std::min(std::max(v, minimum), maximum);
    }
};

/// Remembers the previous sample's control values (sized at construction) and says when they change, so a
/// layer recomputes its controlled parameters only then: constant controls cost one comparison per sample.
class ControlWatch {
public:
    explicit ControlWatch(int k) : last_(static_cast<std::size_t>(k), 0.0f) {}

    /// Forgets the previous values: the next sample counts as a change.
    void reset() noexcept { valid_ = false; }

    /// Whether `controls` (K values) differ from the previous call's, remembering them.
    bool changed(const float* controls) noexcept {
        bool differs = !valid_;
        for (std::size_t k = 0; k < last_.size(); ++k) {
            if (last_[k] != controls[k]) differs = true;
            last_[k] = controls[k];
        }
        valid_ = true;
        return differs;
    }

private:
    std::vector<float> last_;
    bool valid_ = false;
};

/// dB to a linear factor, 10^(dB / 20), in double.
inline double db_to_linear(double db) noexcept { return std::pow(10.0, db / 20.0); }

}  // namespace rtnt
