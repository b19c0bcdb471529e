// The one hot loop: a causal multi-tap matrix product over a block of time-major rows.
//
//   out[t][o] = bias[o] + sum_{k<K} sum_{i<cin} in[(t + k*d) * in_stride + i] * w[(k*cin + i) * np + o]
//
// Dense layers are K = 1; a dilated causal convolution reads its input through a history buffer
// whose row 0 is d*(K-1) samples before the first output. Weights are packed tap-major with the
// output channels innermost and padded to np (a multiple of 8), so each (k, i) step is a broadcast
// of one input value times a contiguous weight row.
//
// Every output element is computed in one fixed order, whatever tile computes it, so results do
// not depend on the block partition: one FMA chain per tap, chain_k = sum_i in * w over i in
// order (chain_0 starts from the bias, the others from 0), then out = ((chain_0 + chain_1) + ...).
// Multi-row tiles run the taps one after another and add each chain into the output; a single
// row (block size 1) runs the chains of several taps side by side, so its latency is one chain of
// cin FMAs rather than K * cin.
#pragma once

#include <cmath>

#include "lanes.hpp"
#include "math.hpp"

namespace rtnt {
namespace detail {

/// Rows per tile for NC column chunks of 8 floats (V = 8 NC / kLanes registers per row): as many
/// accumulators as leave room for the weight row and a broadcast in the register file (at most 12).
template <int NC>
constexpr int tile_rows() {
    constexpr int V = NC * 8 / kLanes;
    constexpr int r = (kVectorRegisters - V - 1) / V;
    return r < 1 ? 1 : (r > 12 ? 12 : r);
}

#if defined(__GNUC__) || defined(__clang__)
/// Adds v into out (or stores it, for the first tap): the fixed chain combination order.
inline void add_chain(float* out, const vf& v, bool first) noexcept {
    store_lanes(out, first ? v : load_lanes(out) + v);
}

template <int R, int NC>
inline void tap_tile(const float* RTNT_RESTRICT in, int in_stride, int step, int K, int cin,
                     const float* RTNT_RESTRICT w, int np, const float* RTNT_RESTRICT bias,
                     float* RTNT_RESTRICT out, int out_stride) noexcept {
    constexpr int V = NC * 8 / kLanes;
    for (int k = 0; k < K; ++k) {
        vf acc[R][V];
        for (int c = 0; c < V; ++c) {
            vf start = k == 0 ? load_lanes(bias + kLanes * c) : vf{};
            for (int r = 0; r < R; ++r) acc[r][c] = start;
        }
        const float* x = in + static_cast<long>(k) * step;
        const float* wk = w + static_cast<long>(k) * cin * np;
        for (int i = 0; i < cin; ++i) {
            vf wv[V];
            for (int c = 0; c < V; ++c) wv[c] = load_lanes(wk + static_cast<long>(i) * np + kLanes * c);
            for (int r = 0; r < R; ++r) {
                vf xb;
                splat(xb, x[static_cast<long>(r) * in_stride + i]);
                for (int c = 0; c < V; ++c) fma_lanes(acc[r][c], xb, wv[c]);
            }
        }
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < V; ++c) add_chain(out + static_cast<long>(r) * out_stride + kLanes * c, acc[r][c], k == 0);
    }
}

/// Taps k0 .. k0+g-1 of one row, their chains side by side (G is the most that fit in registers;
/// g <= G picks the instantiation with exactly g taps).
template <int G, int NC>
inline void tap_row_taps(const float* RTNT_RESTRICT in, int step, int k0, int g, int cin, const float* RTNT_RESTRICT w,
                         int np, const float* RTNT_RESTRICT bias, float* RTNT_RESTRICT out) noexcept {
    if constexpr (G > 1) {
        if (g < G) return tap_row_taps<G - 1, NC>(in, step, k0, g, cin, w, np, bias, out);
    }
    constexpr int V = NC * 8 / kLanes;
    vf acc[G][V];
    for (int j = 0; j < G; ++j)
        for (int c = 0; c < V; ++c) acc[j][c] = k0 + j == 0 ? load_lanes(bias + kLanes * c) : vf{};
    const float* x = in + static_cast<long>(k0) * step;
    const float* wk = w + static_cast<long>(k0) * cin * np;
    for (int i = 0; i < cin; ++i)
        for (int j = 0; j < G; ++j) {
            vf xb;
            splat(xb, x[static_cast<long>(j) * step + i]);
            const float* wr = wk + (static_cast<long>(j) * cin + i) * np;
            for (int c = 0; c < V; ++c) fma_lanes(acc[j][c], xb, load_lanes(wr + kLanes * c));
        }
    for (int j = 0; j < G; ++j)
        for (int c = 0; c < V; ++c) add_chain(out + kLanes * c, acc[j][c], k0 + j == 0);
}

/// Taps whose chains run side by side in a single row: accumulators fill the register file but
/// for one broadcast and one spare (weights are FMA memory operands, each used once).
template <int NC>
constexpr int row_taps() {
    constexpr int V = NC * 8 / kLanes;
    constexpr int g = (kVectorRegisters - 2) / V;
    return g < 1 ? 1 : (g > 8 ? 8 : g);
}

template <int NC>
inline void tap_row(const float* in, int step, int K, int cin, const float* w, int np, const float* bias,
                    float* out) noexcept {
    constexpr int G = row_taps<NC>();
    for (int k0 = 0; k0 < K; k0 += G) tap_row_taps<G, NC>(in, step, k0, K - k0 < G ? K - k0 : G, cin, w, np, bias, out);
}
#else
template <int R, int NC>
inline void tap_tile(const float* RTNT_RESTRICT in, int in_stride, int step, int K, int cin,
                     const float* RTNT_RESTRICT w, int np, const float* RTNT_RESTRICT bias,
                     float* RTNT_RESTRICT out, int out_stride) noexcept {
    constexpr int C = NC * 8;
    for (int k = 0; k < K; ++k) {
        float acc[R][C];
        for (int r = 0; r < R; ++r)
            for (int j = 0; j < C; ++j) acc[r][j] = k == 0 ? bias[j] : 0.0f;
        const float* x = in + static_cast<long>(k) * step;
        const float* wk = w + static_cast<long>(k) * cin * np;
        for (int i = 0; i < cin; ++i) {
            const float* wr = wk + static_cast<long>(i) * np;
            for (int r = 0; r < R; ++r) {
                const float xv = x[static_cast<long>(r) * in_stride + i];
                for (int j = 0; j < C; ++j) acc[r][j] = madd(xv, wr[j], acc[r][j]);
            }
        }
        for (int r = 0; r < R; ++r)
            for (int j = 0; j < C; ++j) {
                float& o = out[static_cast<long>(r) * out_stride + j];
                o = k == 0 ? acc[r][j] : o + acc[r][j];
            }
    }
}

template <int NC>
inline void tap_row(const float* in, int step, int K, int cin, const float* w, int np, const float* bias,
                    float* out) noexcept {
    tap_tile<1, NC>(in, 0, step, K, cin, w, np, bias, out, 0);
}
#endif

/// Rows in tiles of R, the remainder in tiles of R/2, R/4, ..., single rows. Each output element
/// is the same arithmetic whatever computes it (see the file comment), so the tiling never
/// changes a result.
template <int R, int NC>
inline void tap_rows(const float* in, int in_stride, int step, int K, int cin, const float* w, int np,
                     const float* bias, float* out, int out_stride, int n) noexcept {
    if constexpr (R == 1) {
        for (int t = 0; t < n; ++t)
            tap_row<NC>(in + static_cast<long>(t) * in_stride, step, K, cin, w, np, bias, out + static_cast<long>(t) * out_stride);
    } else {
        int t = 0;
        for (; t + R <= n; t += R)
            tap_tile<R, NC>(in + static_cast<long>(t) * in_stride, in_stride, step, K, cin, w, np, bias,
                            out + static_cast<long>(t) * out_stride, out_stride);
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

/// Column groups of 8 floats for the next chunk, given `rem` padded columns left and n rows.
/// Wide chunks read each input value once for more outputs. With 16 vector registers a wide
/// chunk leaves room for few rows (24 columns: 4 rows), and the compiler then reloads the weight
/// row from L1 for every row of the tile (16 loads per 12 FMAs). Blocks of at least one full
/// 16-column tile (6 rows) therefore go 16 columns at a time, which keeps the weights in registers.
inline int column_groups(int rem, int n) noexcept {
    const int widest = rem >= 32 ? 4 : rem / 8;
    if (kVectorRegisters >= 32 || n < tile_rows<2>()) return widest;
    return widest < 2 ? widest : 2;
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
        const int groups = detail::column_groups(rem, n);
        if (groups == 4) detail::tap_columns<4>(in, in_stride, step, K, cin, wc, np, bc, oc, out_stride, n);
        else if (groups == 3) detail::tap_columns<3>(in, in_stride, step, K, cin, wc, np, bc, oc, out_stride, n);
        else if (groups == 2) detail::tap_columns<2>(in, in_stride, step, K, cin, wc, np, bc, oc, out_stride, n);
        else detail::tap_columns<1>(in, in_stride, step, K, cin, wc, np, bc, oc, out_stride, n);
        c += 8 * groups;
    }
}

}  // namespace rtnt
