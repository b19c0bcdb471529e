// Vectorisable elementwise math: a rational tanh, sigmoid through tanh, and array helpers.
#pragma once

#include <algorithm>
#include <cmath>

#if defined(__GNUC__) || defined(__clang__)
#define RTNT_RESTRICT __restrict__
#else
#define RTNT_RESTRICT __restrict
#endif

#if defined(__GNUC__) || defined(__clang__)
#define RTNT_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define RTNT_ALWAYS_INLINE inline
#endif

namespace rtnt {

/// a * b + c, fused exactly when the target has FMA instructions and unfused otherwise, never
/// left to the compiler's contraction choice: vector and scalar code paths must round alike so
/// that results do not depend on how a signal is cut into blocks.
RTNT_ALWAYS_INLINE float madd(float a, float b, float c) noexcept {
#if defined(__FMA__) || defined(__aarch64__) || defined(__ARM_FEATURE_FMA)
    return std::fma(a, b, c);
#else
    return a * b + c;
#endif
}

/// tanh(x) as c * P(c^2) / Q(c^2) with c = x clamped to [-9, 9].
/// The coefficients are a relative-error minimax fit made for this library; the float32 result is
/// within 4e-7 absolute of the exact tanh everywhere (so |result| may exceed 1 by up to 2.4e-7).
/// Branch-free and always inlined, so loops over it vectorise.
RTNT_ALWAYS_INLINE float fast_tanh(float x) noexcept {
    const float c = std::min(std::max(x, -9.0f), 9.0f);
    const float s = c * c;
    const float p = madd(madd(madd(madd(1.3420105e-08f, s, 2.0661466e-05f), s, 3.4990083e-03f), s, 1.3383991e-01f), s, 1.0f);
    const float q = madd(madd(madd(madd(7.8048447e-07f, s, 3.2910585e-04f), s, 2.5890253e-02f), s, 4.6717313e-01f), s, 1.0f);
    return c * p / q;
}

/// Logistic sigmoid as 0.5 + 0.5 tanh(x / 2); absolute error below 2e-7.
RTNT_ALWAYS_INLINE float fast_sigmoid(float x) noexcept { return madd(0.5f, fast_tanh(0.5f * x), 0.5f); }

/// Lanes of `dot_lanes`: two AVX2 registers, so two independent FMA chains per step.
inline constexpr int kDotLanes = 16;

/// sum_i a[i] * b[i] for n a multiple of kDotLanes, as kDotLanes partial sums (lane l takes i = l mod
/// kDotLanes, in order) added pairwise at the end. The order is fixed by n alone, so the result does not depend
/// on where the operands sit in a block; the lane loop vectorises.
RTNT_ALWAYS_INLINE float dot_lanes(const float* RTNT_RESTRICT a, const float* RTNT_RESTRICT b, int n) noexcept {
    float lane[kDotLanes] = {};
    for (int i = 0; i < n; i += kDotLanes)
        for (int l = 0; l < kDotLanes; ++l) lane[l] = madd(a[i + l], b[i + l], lane[l]);
    for (int width = kDotLanes / 2; width >= 1; width /= 2)
        for (int l = 0; l < width; ++l) lane[l] += lane[l + width];
    return lane[0];
}

inline void relu_inplace(float* RTNT_RESTRICT x, int n) noexcept {
    for (int i = 0; i < n; ++i) x[i] = std::max(x[i], 0.0f);
}

inline void elu_inplace(float* RTNT_RESTRICT x, int n) noexcept {
    for (int i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : std::expm1(x[i]);
}

/// Softmax over the first `channels` entries of each of `rows` rows spaced `stride` apart.
inline void softmax_rows(float* x, int rows, int stride, int channels) noexcept {
    for (int r = 0; r < rows; ++r) {
        float* v = x + static_cast<long>(r) * stride;
        float m = v[0];
        for (int c = 1; c < channels; ++c) m = std::max(m, v[c]);
        float sum = 0.0f;
        for (int c = 0; c < channels; ++c) {
            v[c] = std::exp(v[c] - m);
            sum += v[c];
        }
        const float inv = 1.0f / sum;
        for (int c = 0; c < channels; ++c) v[c] *= inv;
    }
}

}  // namespace rtnt
