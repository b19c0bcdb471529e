// Envelope gain: an output dynamics stage (rtnt's "nam-envelope-gain-1" JSON, docs/envelope_gain_format.md).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>

#include "../core/aligned.hpp"
#include "../core/layer.hpp"
#include "../core/math.hpp"

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

namespace detail {

inline float bits_to_float(std::int32_t i) noexcept {
    float f;
    std::memcpy(&f, &i, sizeof f);
    return f;
}

inline std::int32_t float_to_bits(float f) noexcept {
    std::int32_t i;
    std::memcpy(&i, &f, sizeof i);
    return i;
}

/// log2(x) for a normal float x > 0: the exponent, plus log2 of the mantissa m in [sqrt(1/2), sqrt(2)) as
/// 2/ln 2 * atanh(t), t = (m - 1) / (m + 1), by its series to t^9 (truncation below 4e-10). Branch-free, so
/// loops over it vectorise; within 2e-7 absolute of std::log2 over the envelopes' range.
RTNT_ALWAYS_INLINE float fast_log2(float x) noexcept {
    const std::int32_t bits = float_to_bits(x);
    std::int32_t e = ((bits >> 23) & 255) - 127;
    float m = bits_to_float((bits & 0x007FFFFF) | 0x3F800000);  // [1, 2)
    const bool high = m > 1.41421356f;
    m = high ? 0.5f * m : m;
    e = high ? e + 1 : e;
    const float t = (m - 1.0f) / (m + 1.0f), t2 = t * t;
    float s = madd(t2, 1.0f / 9.0f, 1.0f / 7.0f);
    s = madd(s, t2, 1.0f / 5.0f);
    s = madd(s, t2, 1.0f / 3.0f);
    s = madd(s, t2, 1.0f);
    return madd(s * t, 2.88539008f, static_cast<float>(e));  // 2 / ln 2
}

/// 2^y for y in [-64, 64]: 2^round(y) from the exponent bits times 2^f, f = y - round(y) in [-1/2, 1/2], as
/// exp(f ln 2) by its Taylor series to degree 7 (relative error below 1e-8 before rounding). Branch-free.
RTNT_ALWAYS_INLINE float fast_exp2(float y) noexcept {
    const float r = std::nearbyint(y);
    const float f = (y - r) * 0.693147181f;  // ln 2
    float p = madd(f, 1.0f / 5040.0f, 1.0f / 720.0f);
    p = madd(p, f, 1.0f / 120.0f);
    p = madd(p, f, 1.0f / 24.0f);
    p = madd(p, f, 1.0f / 6.0f);
    p = madd(p, f, 0.5f);
    p = madd(p, f, 1.0f);
    p = madd(p, f, 1.0f);
    return p * bits_to_float((static_cast<std::int32_t>(r) + 127) << 23);
}

}  // namespace detail

/// Mono y[n] = x[n] * 10^(g[n] / 20), a compressor's kind of gain on a model's output, causal, per sample:
///   p[n] = k p[n-1] + (1 - k) |x[n]|, k = exp(-1 / (attack * sr)) if |x[n]| > p[n-1], else exp(-1 / (release * sr))
///   l[n] = b l[n-1] + (1 - b) x[n]^2, b = exp(-1 / (level * sr))
///   g[n] = clamp(w0 + w1 * max(20 log10 p[n], floor) + w2 * max(10 log10 l[n], floor), -max_gain, max_gain)
/// The state (p, l) is float32 and starts at zero after reset(). A block runs the two recursions first (serial),
/// then the gain of every sample branch-free (the logarithms and the power by detail::fast_log2 / fast_exp2), so
/// that loop vectorises. Allocates nothing after prepare(). Its memory has no end, so lookback() reports the
/// settling span: kSettlingTimeConstants of its longest time constant, after which its state's dependence on
/// where it started is below e^-10 (what a region's history must cover to be scored as in one pass).
class EnvelopeGain final : public Layer {
public:
    static constexpr double kSettlingTimeConstants = 10.0;

    EnvelopeGain(const EnvelopeGainSpec& spec, double sample_rate)
        : Layer(1, 1),
          rise_(static_cast<float>(std::exp(-1000.0 / (spec.attack_ms * sample_rate)))),
          fall_(static_cast<float>(std::exp(-1000.0 / (spec.release_ms * sample_rate)))),
          keep_(static_cast<float>(std::exp(-1000.0 / (spec.level_ms * sample_rate)))),
          peak_floor_(static_cast<float>(std::pow(10.0, spec.floor_db / 20.0))),
          level_floor_(static_cast<float>(std::pow(10.0, spec.floor_db / 10.0))),
          max_gain_db_(static_cast<float>(spec.max_gain_db)),
          w0_(static_cast<float>(spec.weights[0])),
          // dB per octave of each envelope: 20 log10(2) for the peak, 10 log10(2) for the power level
          w_peak_(static_cast<float>(spec.weights[1] * 20.0 * std::log10(2.0))),
          w_level_(static_cast<float>(spec.weights[2] * 10.0 * std::log10(2.0))),
          settling_(settling_samples(spec, sample_rate)) {}

    /// kSettlingTimeConstants of the longest of the three time constants, in samples (rounded up).
    static int settling_samples(const EnvelopeGainSpec& spec, double sample_rate) noexcept {
        const double longest_ms = std::max({spec.attack_ms, spec.release_ms, spec.level_ms});
        return static_cast<int>(std::ceil(kSettlingTimeConstants * longest_ms * sample_rate / 1000.0));
    }

    void prepare(int max_block) override {
        peaks_.assign(static_cast<std::size_t>(max_block), 0.0f);
        levels_.assign(static_cast<std::size_t>(max_block), 0.0f);
    }

    void reset() noexcept override {
        peak_ = 0.0f;
        level_ = 0.0f;
    }

    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        const int s = padded(1);
        float* peaks = peaks_.data();
        float* levels = levels_.data();
        float p = peak_, l = level_;
        for (int t = 0; t < n; ++t) {
            const float x = in[static_cast<long>(t) * in_stride];
            const float v = std::fabs(x);
            const float k = v > p ? rise_ : fall_;
            p = madd(k, p - v, v);         // k p + (1 - k) v
            l = madd(keep_, l - x * x, x * x);  // b l + (1 - b) x^2
            peaks[t] = p;
            levels[t] = l;
        }
        peak_ = p;
        level_ = l;
        for (int t = 0; t < n; ++t) {  // the gain of each sample, into peaks[]: no dependence between samples
            float g = madd(w_peak_, detail::fast_log2(std::max(peaks[t], peak_floor_)), w0_);
            g = madd(w_level_, detail::fast_log2(std::max(levels[t], level_floor_)), g);
            g = std::min(std::max(g, -max_gain_db_), max_gain_db_);
            peaks[t] = detail::fast_exp2(g * kDbToOctaves);
        }
        for (int t = 0; t < n; ++t) store_mono(out, s, t, in[static_cast<long>(t) * in_stride] * peaks[t]);
    }

    double macs_per_sample() const noexcept override { return 6.0; }
    int lookback() const noexcept override { return settling_; }

private:
    static constexpr float kDbToOctaves = 0.166096405f;  // log2(10) / 20
    float rise_, fall_, keep_, peak_floor_, level_floor_, max_gain_db_, w0_, w_peak_, w_level_;
    int settling_;
    float peak_ = 0.0f, level_ = 0.0f;
    FloatVec peaks_, levels_;
};

}  // namespace rtnt
