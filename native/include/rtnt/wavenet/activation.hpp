// The activation functions a NAM WaveNet names (Tanh, ReLU, LeakyReLU, PReLU, Sigmoid, SiLU, ...),
// applied in place to time-major blocks of padded rows.
#pragma once

#include <algorithm>
#include <cmath>

#include "../core/aligned.hpp"
#include "../core/math.hpp"
#include "../core/tap_gemm.hpp"

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

namespace detail {
#if defined(__GNUC__) || defined(__clang__)
using rtnt::detail::fma_lanes;
using rtnt::detail::kLanes;
using rtnt::detail::splat;
using rtnt::detail::vf;
using rtnt::detail::vfu;

inline vf madd_lanes(const vf& a, const vf& b, vf c) noexcept {
    fma_lanes(c, a, b);
    return c;
}

/// std::min(std::max(x, lo), hi) lane by lane (a NaN x passes through): on x86 vmaxps(lo, x) then
/// vminps(hi, .), which have exactly those semantics (GCC emits compares and blends for them).
inline vf clamp_lanes(const vf& x, const vf& lo, const vf& hi) noexcept {
#if defined(__AVX__)
    const __m256 low = _mm256_max_ps(reinterpret_cast<__m256>(lo), reinterpret_cast<__m256>(x));
    return reinterpret_cast<vf>(_mm256_min_ps(reinterpret_cast<__m256>(hi), low));
#else
    const vf low = x < lo ? lo : x;
    return hi < low ? hi : low;
#endif
}

/// fast_tanh (core/math.hpp) lane by lane, bit for bit: the same operations in the same order.
inline vf tanh_lanes(const vf& v) noexcept {
    vf lo, hi, k4, k3, k2, k1, one, m4, m3, m2, m1;
    splat(lo, -9.0f), splat(hi, 9.0f), splat(one, 1.0f);
    splat(k4, 1.3420105e-08f), splat(k3, 2.0661466e-05f), splat(k2, 3.4990083e-03f), splat(k1, 1.3383991e-01f);
    splat(m4, 7.8048447e-07f), splat(m3, 3.2910585e-04f), splat(m2, 2.5890253e-02f), splat(m1, 4.6717313e-01f);
    const vf x = clamp_lanes(v, lo, hi);
    const vf sq = x * x;
    const vf p = madd_lanes(madd_lanes(madd_lanes(madd_lanes(k4, sq, k3), sq, k2), sq, k1), sq, one);
    const vf q = madd_lanes(madd_lanes(madd_lanes(madd_lanes(m4, sq, m3), sq, m2), sq, m1), sq, one);
    return x * p / q;
}
#endif
}  // namespace detail

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
            case ActKind::Tanh: tanh_rows(x, rows, width, stride); break;
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
            case ActKind::Sigmoid: each(x, rows, width, stride, [](float v) { return fast_sigmoid(v); }); break;
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
    /// fast_tanh over the rows: in registers (tanh_lanes, bit-identical) where the width is whole registers.
    static void tanh_rows(float* x, int rows, int width, int stride) noexcept {
#if defined(__GNUC__) || defined(__clang__)
        if (width % detail::kLanes == 0) {
            for (int r = 0; r < rows; ++r)
                for (int c = 0; c < width; c += detail::kLanes) {
                    auto* v = reinterpret_cast<detail::vfu*>(x + static_cast<long>(r) * stride + c);
                    *v = detail::tanh_lanes(*v);
                }
            return;
        }
#endif
        each(x, rows, width, stride, [](float v) { return fast_tanh(v); });
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
