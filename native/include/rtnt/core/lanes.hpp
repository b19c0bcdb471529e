// SIMD lanes through the GCC/Clang vector extension (vf: one AVX, SSE or NEON register of floats), and the
// elementwise functions of core/math.hpp on them, bit for bit: the same operations in the same order per lane.
#pragma once

#include <cmath>
#include <cstring>

#if defined(__AVX__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "math.hpp"

namespace rtnt {
namespace detail {

#if defined(__AVX__)
constexpr int kLanes = 8;  // floats per SIMD register
#else
constexpr int kLanes = 4;  // SSE, NEON and the generic fallback
#endif

#if defined(__AVX512F__) || defined(__aarch64__)
constexpr int kVectorRegisters = 32;  // AVX-512VL: 32 ymm; AArch64: 32 q registers
#else
constexpr int kVectorRegisters = 16;
#endif

#if defined(__GNUC__) || defined(__clang__)
// GCC/Clang vector extension: the compiler maps vf onto one AVX, SSE or NEON register. The code
// stays portable C++ with exactly one instruction sequence for every row of a tile.
typedef float vf __attribute__((vector_size(4 * kLanes)));

/// The register at p, which needs only float alignment (memcpy: an unaligned load, never an aligned one).
/// Every load and store of vf goes through these two: GCC drops a typedef's `aligned(4)` attribute when
/// the type passes through a template, and an aligned store to a float array can then fault.
inline vf load_lanes(const float* p) noexcept {
    vf v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

/// Stores v at p (float alignment suffices).
inline void store_lanes(float* p, const vf& v) noexcept { std::memcpy(p, &v, sizeof v); }

/// acc = a * b + acc lane by lane, rounded like madd(): fused on FMA hardware, never left to
/// contraction (GCC contracts some instantiations of a template and not others). Vectors pass by
/// reference so no vector-register calling convention is involved on any target.
inline void fma_lanes(vf& acc, const vf& a, const vf& b) noexcept {
#if defined(__FMA__) && defined(__AVX__)
    acc = reinterpret_cast<vf>(_mm256_fmadd_ps(reinterpret_cast<__m256>(a), reinterpret_cast<__m256>(b),
                                               reinterpret_cast<__m256>(acc)));
#elif defined(__aarch64__)
    acc = reinterpret_cast<vf>(vfmaq_f32(reinterpret_cast<float32x4_t>(acc), reinterpret_cast<float32x4_t>(a),
                                         reinterpret_cast<float32x4_t>(b)));
#elif defined(__x86_64__) || defined(__i386__)
    acc = a * b + acc;  // no FMA instructions enabled: nothing can be contracted
#else
    for (int l = 0; l < kLanes; ++l) acc[l] = std::fma(a[l], b[l], acc[l]);
#endif
}

/// Every lane set to x (an initialiser list: no arithmetic, so a plain broadcast).
inline void splat(vf& v, float x) noexcept {
#if defined(__AVX__)
    v = vf{x, x, x, x, x, x, x, x};
#else
    v = vf{x, x, x, x};
#endif
}

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

/// fast_sigmoid lane by lane, bit for bit.
inline vf sigmoid_lanes(const vf& v) noexcept {
    vf half;
    splat(half, 0.5f);
    return madd_lanes(half, tanh_lanes(half * v), half);
}
#endif

/// x = scalar(x) over n floats: whole registers through `lanes` (the same function on vf, bit for bit), the
/// rest one by one.
template <typename Lanes, typename Scalar>
inline void map_inplace(float* RTNT_RESTRICT x, long n, Lanes lanes, Scalar scalar) noexcept {
    long i = 0;
#if defined(__GNUC__) || defined(__clang__)
    for (; i + kLanes <= n; i += kLanes) {
        store_lanes(x + i, lanes(load_lanes(x + i)));
    }
#else
    (void)lanes;
#endif
    for (; i < n; ++i) x[i] = scalar(x[i]);
}

}  // namespace detail

#if defined(__GNUC__) || defined(__clang__)
#define RTNT_LANES(f) [](const detail::vf& v) { return detail::f(v); }  // the lane function, where vf exists
#else
#define RTNT_LANES(f) nullptr
#endif

/// x = fast_tanh(x) over n floats, vectorised (tanh_lanes).
inline void tanh_inplace(float* RTNT_RESTRICT x, long n) noexcept {
    detail::map_inplace(x, n, RTNT_LANES(tanh_lanes), [](float v) { return fast_tanh(v); });
}

/// x = fast_sigmoid(x) over n floats, vectorised (sigmoid_lanes).
inline void sigmoid_inplace(float* RTNT_RESTRICT x, long n) noexcept {
    detail::map_inplace(x, n, RTNT_LANES(sigmoid_lanes), [](float v) { return fast_sigmoid(v); });
}

#undef RTNT_LANES

}  // namespace rtnt
