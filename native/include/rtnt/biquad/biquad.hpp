// A cascade of biquad sections (rtnt gray-box `biquad`), run per sample in double precision.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "../core/aligned.hpp"
#include "../core/layer.hpp"
#include "../graybox/controller.hpp"

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

/// The sample rate of rtnt's models (rtnt.constants.SAMPLE_RATE), at which controlled sections are designed.
inline constexpr double kBiquadSampleRate = 48000.0;

/// The RBJ Audio EQ Cookbook filters (R. Bristow-Johnson) of a `peq` section.
enum class BiquadKind { Peaking, LowShelf, HighShelf, Lowpass, Highpass };

/// A section in the player's terms: kind, frequency (Hz), Q and gain (dB; unused by low/high-pass).
struct RbjSection {
    BiquadKind kind = BiquadKind::Peaking;
    double freq_hz = 1000.0, q = 0.707, gain_db = 0.0;
};

/// (b0, b1, b2, a1, a2) / a0 of an RBJ cookbook section at `sample_rate`, in double precision: the formulas of
/// rtnt/model/graybox/rbj.py (which trains them), term for term.
inline BiquadCoefficients rbj_coefficients(const RbjSection& p, double sample_rate) noexcept {
    const double w0 = 2.0 * 3.14159265358979323846 * p.freq_hz / sample_rate;
    const double cos_w = std::cos(w0), alpha = std::sin(w0) / (2.0 * p.q);
    const double a = std::exp(p.gain_db * (std::log(10.0) / 40.0));
    double b0, b1, b2, d0, d1, d2;
    switch (p.kind) {
        case BiquadKind::Peaking:
            b0 = 1.0 + alpha * a, b1 = -2.0 * cos_w, b2 = 1.0 - alpha * a;
            d0 = 1.0 + alpha / a, d1 = -2.0 * cos_w, d2 = 1.0 - alpha / a;
            break;
        case BiquadKind::LowShelf:
        case BiquadKind::HighShelf: {
            const double sg = p.kind == BiquadKind::LowShelf ? 1.0 : -1.0;
            const double k = 2.0 * std::sqrt(a) * alpha;
            b0 = a * ((a + 1.0) - sg * (a - 1.0) * cos_w + k);
            b1 = sg * 2.0 * a * ((a - 1.0) - sg * (a + 1.0) * cos_w);
            b2 = a * ((a + 1.0) - sg * (a - 1.0) * cos_w - k);
            d0 = (a + 1.0) + sg * (a - 1.0) * cos_w + k;
            d1 = -sg * 2.0 * ((a - 1.0) + sg * (a + 1.0) * cos_w);
            d2 = (a + 1.0) + sg * (a - 1.0) * cos_w - k;
            break;
        }
        case BiquadKind::Lowpass:
            b0 = (1.0 - cos_w) / 2.0, b1 = 1.0 - cos_w, b2 = (1.0 - cos_w) / 2.0;
            d0 = 1.0 + alpha, d1 = -2.0 * cos_w, d2 = 1.0 - alpha;
            break;
        default:  // Highpass
            b0 = (1.0 + cos_w) / 2.0, b1 = -(1.0 + cos_w), b2 = (1.0 + cos_w) / 2.0;
            d0 = 1.0 + alpha, d1 = -2.0 * cos_w, d2 = 1.0 - alpha;
            break;
    }
    return {b0 / d0, b1 / d0, b2 / d0, d1 / d0, d2 / d0};
}

/// Mono cascade of sections in transposed direct form II (the recursion scipy.signal.sosfilt runs), with
/// coefficients and state in double precision: a pole near z = 1 turns a float32 rounding of a1 into
/// output errors near 1e-4 (docs/graybox_format.md). The signal stays double between sections and is
/// rounded to float once, at the output.
///
/// With controllers (parameter 0 freq_hz, 1 q, 2 gain_db of their section), the controlled sections' RBJ
/// coefficients are recomputed from `rbj` (every section's parameters as written) only when a control value
/// changes from the previous sample; the state carries through the change, as the reference runtime's.
class Biquads final : public Layer {
public:
    explicit Biquads(std::vector<BiquadCoefficients> sections, std::vector<Controller> controllers = {},
                     std::vector<RbjSection> rbj = {}, int num_controls = 0)
        : Layer(1, 1), sections_(std::move(sections)), state_(sections_.size()), controllers_(std::move(controllers)),
          rbj_(std::move(rbj)), work_(rbj_), watch_(num_controls) {
        for (const Controller& c : controllers_)
            if (std::find(controlled_.begin(), controlled_.end(), c.section) == controlled_.end())
                controlled_.push_back(c.section);
    }

    void reset() noexcept override {
        for (auto& s : state_) s = {0.0, 0.0};
        watch_.reset();
    }

    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        for (int t = 0; t < n; ++t)
            store_mono(out, padded(1), t, static_cast<float>(run(in[static_cast<long>(t) * in_stride])));
    }

    bool takes_controls() const noexcept override { return !controllers_.empty(); }

    void process_controlled(const float* in, int in_stride, const float* controls, int controls_stride, float* out,
                            int n) noexcept override {
        for (int t = 0; t < n; ++t) {
            const float* c = controls + static_cast<long>(t) * controls_stride;
            if (watch_.changed(c)) update(c);
            store_mono(out, padded(1), t, static_cast<float>(run(in[static_cast<long>(t) * in_stride])));
        }
    }

    double macs_per_sample() const noexcept override { return 5.0 * double(sections_.size()); }
    std::size_t sections() const noexcept { return sections_.size(); }

private:
    /// One sample through the cascade, the signal double between sections.
    double run(double v) noexcept {
        const std::size_t count = sections_.size();
        for (std::size_t k = 0; k < count; ++k) {
            const BiquadCoefficients& c = sections_[k];
            std::array<double, 2>& s = state_[k];
            const double y = c.b0 * v + s[0];
            s[0] = c.b1 * v - c.a1 * y + s[1];
            s[1] = c.b2 * v - c.a2 * y;
            v = y;
        }
        return v;
    }

    /// The controlled sections' coefficients at the control values `c` (no allocation: work_ is a copy of rbj_).
    void update(const float* c) noexcept {
        for (const Controller& k : controllers_) {
            RbjSection& p = work_[static_cast<std::size_t>(k.section)];
            const double v = k.value(c);
            if (k.parameter == 0) p.freq_hz = v;
            if (k.parameter == 1) p.q = v;
            if (k.parameter == 2) p.gain_db = v;
        }
        for (int j : controlled_)
            sections_[static_cast<std::size_t>(j)] = rbj_coefficients(work_[static_cast<std::size_t>(j)], kBiquadSampleRate);
    }

    std::vector<BiquadCoefficients> sections_;
    std::vector<std::array<double, 2>> state_;
    std::vector<Controller> controllers_;
    std::vector<RbjSection> rbj_, work_;
    std::vector<int> controlled_;
    ControlWatch watch_;
};

}  // namespace rtnt
