// The one hot loop: a causal multi-tap matrix product over a block of time-major rows.
//
//   out[t][o] = bias[o] + sum_{k<K} sum_{i<cin} in[(t + k*d) * in_stride + i] * w[(k*cin + i) * np + o]
//
// Dense layers are K = 1; a dilated causal convolution reads its input through a history buffer
// whose row 0 is d*(K-1) samples before the first output. Weights are packed tap-major with the
// output channels innermost and padded to np (a multiple of 8), so each (k, i) step is a broadcast
// of one input value times a contiguous weight row. Every output element is accumulated in the
// same order whatever tile computes it, so results do not depend on the block partition.
#pragma once

#include <cmath>
#include <cstring>

#if defined(__FMA__) && defined(__AVX__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "math.hpp"

namespace rtnt {
namespace detail {

#if defined(__AVX512F__)
constexpr int kVectorRegisters = 32;  // 8-float vectors held in registers
#elif defined(__AVX__) || defined(__aarch64__)
constexpr int kVectorRegisters = 16;
#else
constexpr int kVectorRegisters = 8;  // SSE: two xmm registers per 8-float vector
#endif

/// Rows per tile for NC column chunks of 8 floats: as many accumulators as leave room for the
/// weight row and a broadcast in the register file (at most 12).
template <int NC>
constexpr int tile_rows() {
    constexpr int r = (kVectorRegisters - NC - 1) / NC;
    return r < 1 ? 1 : (r > 12 ? 12 : r);
}

#if defined(__GNUC__) || defined(__clang__)
// GCC/Clang vector extension: the compiler maps 8-float vectors onto AVX, 2 x SSE, 2 x NEON, ...
// The code stays portable C++ with exactly one instruction sequence for every row of a tile.
typedef float vf8 __attribute__((vector_size(32)));

/// acc = a * b + acc lane by lane, rounded like madd(): fused on FMA hardware, never left to
/// contraction (GCC contracts some instantiations of a template and not others). Vectors pass by
/// reference so no vector-register calling convention is involved on any target.
inline void fma8(vf8& acc, const vf8& a, const vf8& b) noexcept {
#if defined(__FMA__) && defined(__AVX__)
    acc = reinterpret_cast<vf8>(_mm256_fmadd_ps(reinterpret_cast<__m256>(a), reinterpret_cast<__m256>(b),
                                                reinterpret_cast<__m256>(acc)));
#elif defined(__aarch64__)
    float32x4_t lo = vfmaq_f32(vld1q_f32(&acc[0]), vld1q_f32(&a[0]), vld1q_f32(&b[0]));
    float32x4_t hi = vfmaq_f32(vld1q_f32(&acc[4]), vld1q_f32(&a[4]), vld1q_f32(&b[4]));
    std::memcpy(&acc, &lo, 16);
    std::memcpy(reinterpret_cast<char*>(&acc) + 16, &hi, 16);
#elif defined(__x86_64__) || defined(__i386__)
    acc = a * b + acc;  // no FMA instructions enabled: nothing can be contracted
#else
    for (int l = 0; l < 8; ++l) acc[l] = std::fma(a[l], b[l], acc[l]);
#endif
}

template <int R, int NC>
inline void tap_tile(const float* RTNT_RESTRICT in, int in_stride, int step, int K, int cin,
                     const float* RTNT_RESTRICT w, int np, const float* RTNT_RESTRICT bias,
                     float* RTNT_RESTRICT out, int out_stride) noexcept {
    vf8 acc[R][NC];
    for (int c = 0; c < NC; ++c) {
        for (int r = 0; r < R; ++r) std::memcpy(&acc[r][c], bias + 8 * c, sizeof(vf8));
    }
    for (int k = 0; k < K; ++k) {
        const float* x = in + static_cast<long>(k) * step;
        const float* wk = w + static_cast<long>(k) * cin * np;
        for (int i = 0; i < cin; ++i) {
            vf8 wv[NC];
            for (int c = 0; c < NC; ++c) std::memcpy(&wv[c], wk + static_cast<long>(i) * np + 8 * c, sizeof(vf8));
            for (int r = 0; r < R; ++r) {
                const float xv = x[static_cast<long>(r) * in_stride + i];
                const vf8 xb = {xv, xv, xv, xv, xv, xv, xv, xv};
                for (int c = 0; c < NC; ++c) fma8(acc[r][c], xb, wv[c]);
            }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < NC; ++c) std::memcpy(out + static_cast<long>(r) * out_stride + 8 * c, &acc[r][c], sizeof(vf8));
}
#else
template <int R, int NC>
inline void tap_tile(const float* RTNT_RESTRICT in, int in_stride, int step, int K, int cin,
                     const float* RTNT_RESTRICT w, int np, const float* RTNT_RESTRICT bias,
                     float* RTNT_RESTRICT out, int out_stride) noexcept {
    constexpr int C = NC * 8;
    float acc[R][C];
    for (int r = 0; r < R; ++r)
        for (int j = 0; j < C; ++j) acc[r][j] = bias[j];
    for (int k = 0; k < K; ++k) {
        const float* x = in + static_cast<long>(k) * step;
        const float* wk = w + static_cast<long>(k) * cin * np;
        for (int i = 0; i < cin; ++i) {
            const float* wr = wk + static_cast<long>(i) * np;
            for (int r = 0; r < R; ++r) {
                const float xv = x[static_cast<long>(r) * in_stride + i];
                for (int j = 0; j < C; ++j) acc[r][j] = madd(xv, wr[j], acc[r][j]);
            }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int j = 0; j < C; ++j) out[static_cast<long>(r) * out_stride + j] = acc[r][j];
}
#endif

/// Rows in tiles of R, the remainder in tiles of R/2, R/4, ..., 1. Each output element is the
/// same FMA sequence whatever tile computes it, so the tiling never changes a result.
template <int R, int NC>
inline void tap_rows(const float* in, int in_stride, int step, int K, int cin, const float* w, int np,
                     const float* bias, float* out, int out_stride, int n) noexcept {
    int t = 0;
    for (; t + R <= n; t += R)
        tap_tile<R, NC>(in + static_cast<long>(t) * in_stride, in_stride, step, K, cin, w, np, bias,
                        out + static_cast<long>(t) * out_stride, out_stride);
    if constexpr (R > 1) {
        if (t < n)
            tap_rows<R / 2, NC>(in + static_cast<long>(t) * in_stride, in_stride, step, K, cin, w, np, bias,
                                out + static_cast<long>(t) * out_stride, out_stride, n - t);
    }
}

template <int NC>
inline void tap_columns(const float* in, int in_stride, int step, int K, int cin, const float* w, int np,
                        const float* bias, float* out, int out_stride, int n) noexcept {
    tap_rows<tile_rows<NC>(), NC>(in, in_stride, step, K, cin, w, np, bias, out, out_stride, n);
}

}  // namespace detail

/// Computes n output rows (see the file comment). `step` = d * in_stride is the distance between
/// taps in floats; out has row stride out_stride >= np, and columns [0, np) are written.
inline void tap_gemm(const float* in, int in_stride, int step, int K, int cin, const float* w, int np,
                     const float* bias, float* out, int out_stride, int n) noexcept {
    int c = 0;
    while (c < np) {
        const int rem = np - c;
        const float* wc = w + c;
        const float* bc = bias + c;
        float* oc = out + c;
        if (rem >= 32) {
            detail::tap_columns<4>(in, in_stride, step, K, cin, wc, np, bc, oc, out_stride, n);
            c += 32;
        } else if (rem == 24) {
            detail::tap_columns<3>(in, in_stride, step, K, cin, wc, np, bc, oc, out_stride, n);
            c += 24;
        } else if (rem == 16) {
            detail::tap_columns<2>(in, in_stride, step, K, cin, wc, np, bc, oc, out_stride, n);
            c += 16;
        } else {
            detail::tap_columns<1>(in, in_stride, step, K, cin, wc, np, bc, oc, out_stride, n);
            c += 8;
        }
    }
}

}  // namespace rtnt
