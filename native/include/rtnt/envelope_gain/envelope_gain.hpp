// Envelope gain: an output dynamics stage (rtnt's "nam-envelope-gain-1" JSON, docs/envelope_gain_format.md).
#pragma once

#include <algorithm>
#include <cmath>
#include <initializer_list>

#include "../core/layer.hpp"

namespace rtnt {

/// The time constants, bounds and weights of an envelope gain, as the file states them.
struct EnvelopeGainSpec {
    double attack_ms = 1.0;    ///< peak follower's rise time constant
    double release_ms = 300.0; ///< peak follower's fall time constant
    double level_ms = 100.0;   ///< time constant of the power level (one-pole smoother of x^2)
    double floor_db = -80.0;   ///< both envelopes are read no lower than this
    double max_gain_db = 12.0; ///< the gain is clamped to +/- this
    double weights[3] = {0.0, 0.0, 0.0};  ///< gain dB = w0 + w1 * peak dB + w2 * level dB
};

/// Mono y[n] = x[n] * 10^(g[n] / 20), a compressor's kind of gain on a model's output, causal, per sample:
///   p[n] = k p[n-1] + (1 - k) |x[n]|, k = exp(-1 / (attack * sr)) if |x[n]| > p[n-1], else exp(-1 / (release * sr))
///   l[n] = b l[n-1] + (1 - b) x[n]^2, b = exp(-1 / (level * sr))
///   g[n] = clamp(w0 + w1 * max(20 log10 p[n], floor) + w2 * max(10 log10 l[n], floor), -max_gain, max_gain)
/// The state (p, l) is float32 and starts at zero after reset(). Allocates nothing. Its memory has no end, so
/// lookback() reports the settling span: kSettlingTimeConstants of its longest time constant, after which its
/// state's dependence on where it started is below e^-10 (what a region's history must cover to be scored as in
/// one pass).
class EnvelopeGain final : public Layer {
public:
    EnvelopeGain(const EnvelopeGainSpec& spec, double sample_rate)
        : Layer(1, 1),
          rise_(static_cast<float>(std::exp(-1000.0 / (spec.attack_ms * sample_rate)))),
          fall_(static_cast<float>(std::exp(-1000.0 / (spec.release_ms * sample_rate)))),
          keep_(static_cast<float>(std::exp(-1000.0 / (spec.level_ms * sample_rate)))),
          peak_floor_(static_cast<float>(std::pow(10.0, spec.floor_db / 20.0))),
          level_floor_(static_cast<float>(std::pow(10.0, spec.floor_db / 10.0))),
          max_gain_db_(static_cast<float>(spec.max_gain_db)),
          w0_(static_cast<float>(spec.weights[0])),
          w_peak_(static_cast<float>(spec.weights[1])),
          w_level_(static_cast<float>(spec.weights[2])),
          settling_(settling_samples(spec, sample_rate)) {}

    static constexpr double kSettlingTimeConstants = 10.0;

    /// kSettlingTimeConstants of the longest of the three time constants, in samples (rounded up).
    static int settling_samples(const EnvelopeGainSpec& spec, double sample_rate) noexcept {
        const double longest_ms = std::max({spec.attack_ms, spec.release_ms, spec.level_ms});
        return static_cast<int>(std::ceil(kSettlingTimeConstants * longest_ms * sample_rate / 1000.0));
    }

    void reset() noexcept override {
        peak_ = 0.0f;
        level_ = 0.0f;
    }

    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        const int s = padded(1);
        for (int t = 0; t < n; ++t) {
            const float x = in[static_cast<long>(t) * in_stride];
            const float v = std::fabs(x);
            const float k = v > peak_ ? rise_ : fall_;
            peak_ = k * peak_ + (1.0f - k) * v;
            level_ = keep_ * level_ + (1.0f - keep_) * (x * x);
            const float peak_db = 20.0f * std::log10(std::max(peak_, peak_floor_));
            const float level_db = 10.0f * std::log10(std::max(level_, level_floor_));
            const float g = std::clamp(w0_ + w_peak_ * peak_db + w_level_ * level_db, -max_gain_db_, max_gain_db_);
            store_mono(out, s, t, x * std::exp(g * kDbToLn));
        }
    }

    double macs_per_sample() const noexcept override { return 6.0; }
    int lookback() const noexcept override { return settling_; }

private:
    static constexpr float kDbToLn = 0.11512925464970229f;  // ln(10) / 20
    float rise_, fall_, keep_, peak_floor_, level_floor_, max_gain_db_, w0_, w_peak_, w_level_;
    int settling_;
    float peak_ = 0.0f, level_ = 0.0f;
};

}  // namespace rtnt
