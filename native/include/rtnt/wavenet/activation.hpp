// The activation functions a NAM WaveNet names (Tanh, ReLU, LeakyReLU, PReLU, Sigmoid, SiLU, ...),
// applied in place to time-major blocks of padded rows.
#pragma once

#include <algorithm>
#include <cmath>

#include "../core/aligned.hpp"
#include "../core/math.hpp"
#include "../core/lanes.hpp"

namespace rtnt {
namespace wavenet {

enum class ActKind { Identity, Tanh, Hardtanh, Fasttanh, Relu, LeakyRelu, Prelu, Sigmoid, Silu, Hardswish, LeakyHardtanh, Softsign };

/// NAM Core's "Fasttanh": its own rational approximation of tanh (up to about 1e-2 from tanh),
/// reproduced as written so that files naming it run as in NAM.
RTNT_ALWAYS_INLINE float nam_fast_tanh(float x) noexcept {
    const float ax = std::fabs(x);
    const float x2 = x * x;
    return (x * (2.45550750702956f + 2.45550750702956f * ax + (0.893229853513558f + 0.821226666969744f * ax) * x2)) /
           (2.44506634652299f + (2.44506634652299f + x2) * std::fabs(x + 0.814642734961073f * x * ax));
}

/// One activation with its parameters. Tanh and Sigmoid use rtnt's vectorised approximations
/// (within 4e-7 and 2e-7 absolute of the exact functions that NAM Core uses).
struct Activation {
    ActKind kind = ActKind::Identity;
    float slope = 0.01f;  // LeakyReLU, and PReLU with one shared slope
    float min_val = -1.0f, max_val = 1.0f, min_slope = 0.01f, max_slope = 0.01f;  // LeakyHardtanh
    FloatVec slopes;      // PReLU with one slope per channel, padded with zeros

    /// Applies the function in place to the first `width` floats of `rows` rows spaced `stride`
    /// apart. Padding lanes within `width` are transformed too: they are never read as inputs,
    /// only kept finite.
    void apply(float* x, int rows, int width, int stride) const noexcept {
        switch (kind) {
            case ActKind::Identity: break;
            case ActKind::Tanh: rows_inplace(x, rows, width, stride, [](float* v, long n) { tanh_inplace(v, n); }); break;
            case ActKind::Hardtanh: each(x, rows, width, stride, [](float v) { return std::min(std::max(v, -1.0f), 1.0f); }); break;
            case ActKind::Fasttanh: each(x, rows, width, stride, [](float v) { return nam_fast_tanh(v); }); break;
            case ActKind::Relu: each(x, rows, width, stride, [](float v) { return std::max(v, 0.0f); }); break;
            case ActKind::LeakyRelu: {
                const float s = slope;
                each(x, rows, width, stride, [s](float v) { return v > 0.0f ? v : s * v; });
                break;
            }
            case ActKind::Prelu:
                if (slopes.empty()) {
                    const float s = slope;
                    each(x, rows, width, stride, [s](float v) { return v > 0.0f ? v : s * v; });
                } else {
                    const float* RTNT_RESTRICT sl = slopes.data();
                    for (int r = 0; r < rows; ++r) {
                        float* RTNT_RESTRICT v = x + static_cast<long>(r) * stride;
                        for (int c = 0; c < width; ++c) v[c] = v[c] > 0.0f ? v[c] : sl[c] * v[c];
                    }
                }
                break;
            case ActKind::Sigmoid: rows_inplace(x, rows, width, stride, [](float* v, long n) { sigmoid_inplace(v, n); }); break;
            case ActKind::Silu: each(x, rows, width, stride, [](float v) { return v * fast_sigmoid(v); }); break;
            case ActKind::Hardswish:
                each(x, rows, width, stride,
                     [](float v) { return v <= -3.0f ? 0.0f : (v >= 3.0f ? v : v * (v + 3.0f) * (1.0f / 6.0f)); });
                break;
            case ActKind::LeakyHardtanh: {
                const float lo = min_val, hi = max_val, ls = min_slope, hs = max_slope;
                each(x, rows, width, stride,
                     [=](float v) { return v < lo ? madd(v - lo, ls, lo) : (v > hi ? madd(v - hi, hs, hi) : v); });
                break;
            }
            case ActKind::Softsign: each(x, rows, width, stride, [](float v) { return v / (1.0f + std::fabs(v)); }); break;
        }
    }

private:
    /// fn (tanh_inplace or sigmoid_inplace of core/lanes.hpp: vectorised, bit-identical) over the rows.
    template <typename F>
    static void rows_inplace(float* x, int rows, int width, int stride, F fn) noexcept {
        if (width == stride) return fn(x, static_cast<long>(rows) * stride);
        for (int r = 0; r < rows; ++r) fn(x + static_cast<long>(r) * stride, width);
    }

    /// x = f(x) over the rows' first `width` floats: one flat loop when the rows are contiguous.
    template <typename F>
    static void each(float* RTNT_RESTRICT x, int rows, int width, int stride, F f) noexcept {
        if (width == stride) {
            const long total = static_cast<long>(rows) * stride;
            for (long i = 0; i < total; ++i) x[i] = f(x[i]);
            return;
        }
        for (int r = 0; r < rows; ++r) {
            float* RTNT_RESTRICT v = x + static_cast<long>(r) * stride;
            for (int c = 0; c < width; ++c) v[c] = f(v[c]);
        }
    }
};

}  // namespace wavenet
}  // namespace rtnt
