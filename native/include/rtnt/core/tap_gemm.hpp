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

#include "math.hpp"

namespace rtnt {
namespace detail {

#if defined(__AVX512F__)
constexpr int kVectorRegisters = 32;
#else
constexpr int kVectorRegisters = 16;
#endif

/// Rows per tile for NC column chunks of 8 floats: as many accumulators as leave room for the
/// weight row and a broadcast in the register file.
template <int NC>
constexpr int tile_rows() {
    return (kVectorRegisters - NC - 2) / NC < 1 ? 1 : ((kVectorRegisters - NC - 2) / NC > 12 ? 12 : (kVectorRegisters - NC - 2) / NC);
}

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

template <int NC>
inline void tap_columns(const float* in, int in_stride, int step, int K, int cin, const float* w, int np,
                        const float* bias, float* out, int out_stride, int n) noexcept {
    constexpr int R = tile_rows<NC>();
    int t = 0;
    for (; t + R <= n; t += R)
        tap_tile<R, NC>(in + static_cast<long>(t) * in_stride, in_stride, step, K, cin, w, np, bias,
                        out + static_cast<long>(t) * out_stride, out_stride);
    for (; t < n; ++t)
        tap_tile<1, NC>(in + static_cast<long>(t) * in_stride, in_stride, step, K, cin, w, np, bias,
                        out + static_cast<long>(t) * out_stride, out_stride);
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
