// A cascade of biquad sections (rtnt gray-box `biquad`), run per sample in double precision.
#pragma once

#include <array>
#include <cmath>
#include <vector>

#include "../core/aligned.hpp"
#include "../core/layer.hpp"

namespace rtnt {

/// One second-order section, a0 normalised to 1: y[n] = b0 x[n] + b1 x[n-1] + b2 x[n-2] - a1 y[n-1] - a2 y[n-2].
struct BiquadCoefficients {
    double b0, b1, b2, a1, a2;
};

/// Whether both poles of z^2 + a1 z + a2 lie strictly inside the unit circle (the stability triangle
/// |a2| < 1 and |a1| < 1 + a2; Jury's criterion for a second-order polynomial).
inline bool biquad_is_stable(const BiquadCoefficients& c) noexcept {
    return std::fabs(c.a2) < 1.0 && std::fabs(c.a1) < 1.0 + c.a2;
}

/// Mono cascade of sections in transposed direct form II (the recursion scipy.signal.sosfilt runs), with
/// coefficients and state in double precision: a pole near z = 1 turns a float32 rounding of a1 into
/// output errors near 1e-4 (docs/graybox_format.md). The signal stays double between sections and is
/// rounded to float once, at the output.
class Biquads final : public Layer {
public:
    explicit Biquads(std::vector<BiquadCoefficients> sections)
        : Layer(1, 1), sections_(std::move(sections)), state_(sections_.size()) {}

    void reset() noexcept override {
        for (auto& s : state_) s = {0.0, 0.0};
    }

    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        const std::size_t count = sections_.size();
        for (int t = 0; t < n; ++t) {
            double v = in[static_cast<long>(t) * in_stride];
            for (std::size_t k = 0; k < count; ++k) {
                const BiquadCoefficients& c = sections_[k];
                std::array<double, 2>& s = state_[k];
                const double y = c.b0 * v + s[0];
                s[0] = c.b1 * v - c.a1 * y + s[1];
                s[1] = c.b2 * v - c.a2 * y;
                v = y;
            }
            store_mono(out, padded(1), t, static_cast<float>(v));
        }
    }

    double macs_per_sample() const noexcept override { return 5.0 * double(sections_.size()); }
    std::size_t sections() const noexcept { return sections_.size(); }

private:
    std::vector<BiquadCoefficients> sections_;
    std::vector<std::array<double, 2>> state_;
};

}  // namespace rtnt
