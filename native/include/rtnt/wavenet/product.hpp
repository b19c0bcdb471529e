// The WaveNet layer's one product: several causal multi-tap terms (the dilated conv over the
// residual history, the input mix-in over the condition) summed into one register tile, plus an
// optional residual row added in the epilogue.
//
//   out[t][o] = bias[o] + sum_terms sum_{k<K} sum_{i<cin} in[t*stride + k*step + i] * w[(k*cin + i)*np + o]
//               (+ residual[t*rstride + o])
//
// Weights are packed as in core/tap_gemm.hpp: tap-major, output channels innermost, rows padded to
// np (a multiple of 8). Every output element is one FMA chain in a fixed order (bias, then the
// terms, taps and input channels in order, then the residual), whatever tile computes it, so the
// result does not depend on how a signal is cut into blocks.
#pragma once

#include <cstring>

#include "../core/tap_gemm.hpp"

namespace rtnt {
namespace wavenet {

/// One summand of a product: `taps` taps `step` floats apart over rows `stride` floats apart.
struct Term {
    const float* in = nullptr;
    int stride = 0;
    int step = 0;
    int taps = 1;
    int cin = 0;
    const float* w = nullptr;
};

namespace detail {

using rtnt::detail::kLanes;

#if defined(__GNUC__) || defined(__clang__)
using rtnt::detail::fma_lanes;
using rtnt::detail::splat;
using rtnt::detail::vf;
using rtnt::detail::load_lanes;
using rtnt::detail::store_lanes;

/// acc[r] += sum_k sum_i in[r*stride + k*step + i] * w[k][i] for one term. S > 0 is the row stride
/// as a compile-time constant (a tile's row addresses then need no registers); S = 0 reads it.
template <int R, int V, int S>
inline void accumulate(vf (&acc)[R][V], const Term& term, int np) noexcept {
    const long stride = S > 0 ? S : term.stride;
    for (int k = 0; k < term.taps; ++k) {
        const float* RTNT_RESTRICT x = term.in + static_cast<long>(k) * term.step;
        const float* RTNT_RESTRICT wk = term.w + static_cast<long>(k) * term.cin * np;
        for (int i = 0; i < term.cin; ++i) {
            vf wv[V];
            for (int c = 0; c < V; ++c) wv[c] = load_lanes(wk + static_cast<long>(i) * np + kLanes * c);
            for (int r = 0; r < R; ++r) {
                vf xb;
                splat(xb, x[r * stride + i]);
                for (int c = 0; c < V; ++c) fma_lanes(acc[r][c], xb, wv[c]);
            }
        }
    }
}

/// One tile of R rows and NC column chunks; S > 0: the first term's row stride is S.
template <int R, int NC, int S>
inline void product_tile(const Term* terms, int nterms, const float* RTNT_RESTRICT bias, int np,
                         const float* residual, int rstride, float* out, int ostride) noexcept {
    constexpr int V = NC * 8 / kLanes;
    vf acc[R][V];
    for (int c = 0; c < V; ++c) {
        const vf b = load_lanes(bias + kLanes * c);
        for (int r = 0; r < R; ++r) acc[r][c] = b;
    }
    accumulate<R, V, S>(acc, terms[0], np);
    for (int j = 1; j < nterms; ++j) accumulate<R, V, 0>(acc, terms[j], np);
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < V; ++c) {
            vf v = acc[r][c];
            if (residual) v = v + load_lanes(residual + static_cast<long>(r) * rstride + kLanes * c);
            store_lanes(out + static_cast<long>(r) * ostride + kLanes * c, v);
        }
}
#else
template <int R, int NC, int S>
inline void product_tile(const Term* terms, int nterms, const float* bias, int np, const float* residual, int rstride,
                         float* out, int ostride) noexcept {
    constexpr int C = NC * 8;
    float acc[R][C];
    for (int r = 0; r < R; ++r)
        for (int o = 0; o < C; ++o) acc[r][o] = bias[o];
    for (int j = 0; j < nterms; ++j) {
        const Term& term = terms[j];
        for (int k = 0; k < term.taps; ++k) {
            const float* x = term.in + static_cast<long>(k) * term.step;
            const float* wk = term.w + static_cast<long>(k) * term.cin * np;
            for (int i = 0; i < term.cin; ++i)
                for (int r = 0; r < R; ++r) {
                    const float xv = x[static_cast<long>(r) * term.stride + i];
                    for (int o = 0; o < C; ++o) acc[r][o] = madd(xv, wk[static_cast<long>(i) * np + o], acc[r][o]);
                }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int o = 0; o < C; ++o)
            out[static_cast<long>(r) * ostride + o] = residual ? acc[r][o] + residual[static_cast<long>(r) * rstride + o] : acc[r][o];
}
#endif

/// Rows in tiles of R, the remainder in tiles of R/2, R/4, ..., single rows (the same arithmetic
/// per element in every tile).
template <int R, int NC, int S>
inline void product_rows(Term* terms, int nterms, const float* bias, int np, const float* residual, int rstride,
                         float* out, int ostride, int n) noexcept {
    int t = 0;
    for (; t + R <= n; t += R) {
        product_tile<R, NC, S>(terms, nterms, bias, np, residual ? residual + static_cast<long>(t) * rstride : nullptr,
                            rstride, out + static_cast<long>(t) * ostride, ostride);
        for (int j = 0; j < nterms; ++j) terms[j].in += static_cast<long>(R) * terms[j].stride;
    }
    if constexpr (R > 1) {
        if (t < n)
            product_rows<R / 2, NC, S>(terms, nterms, bias, np, residual ? residual + static_cast<long>(t) * rstride : nullptr,
                                       rstride, out + static_cast<long>(t) * ostride, ostride, n - t);
    }
}

template <int S>
inline void product_columns(const Term* terms, int nterms, const float* bias, int np, const float* residual, int rstride,
                            float* out, int ostride, int n) noexcept {
    using rtnt::detail::tile_rows;
    for (int c = 0; c < np;) {
        Term local[4];
        for (int j = 0; j < nterms; ++j) {
            local[j] = terms[j];
            local[j].w += c;
        }
        const int groups = rtnt::detail::column_groups(np - c, n);
        const float* rc = residual ? residual + c : nullptr;
        float* oc = out + c;
        const float* bc = bias + c;
        if (groups == 4) product_rows<tile_rows<4>(), 4, S>(local, nterms, bc, np, rc, rstride, oc, ostride, n);
        else if (groups == 3) product_rows<tile_rows<3>(), 3, S>(local, nterms, bc, np, rc, rstride, oc, ostride, n);
        else if (groups == 2) product_rows<tile_rows<2>(), 2, S>(local, nterms, bc, np, rc, rstride, oc, ostride, n);
        else product_rows<tile_rows<1>(), 1, S>(local, nterms, bc, np, rc, rstride, oc, ostride, n);
        c += 8 * groups;
    }
}

/// product() for one row: the same chain per element in columns of 8, without the tiling's
/// dispatch (block size 1). `bias` may be `out` (a chain continued); `out2`, when set, gets a copy.
inline void product_one(const Term* terms, int nterms, const float* bias, int np, const float* residual, float* out,
                        float* out2 = nullptr) noexcept {
#if defined(__GNUC__) || defined(__clang__)
    constexpr int V = 8 / kLanes;
    for (int c = 0; c < np; c += 8) {
        vf acc[1][V];
        for (int v = 0; v < V; ++v) acc[0][v] = load_lanes(bias + c + kLanes * v);
        for (int j = 0; j < nterms; ++j) {
            Term t = terms[j];
            t.w += c;
            accumulate<1, V, 0>(acc, t, np);
        }
        for (int v = 0; v < V; ++v) {
            vf x = acc[0][v];
            if (residual) x = x + load_lanes(residual + c + kLanes * v);
            store_lanes(out + c + kLanes * v, x);
            if (out2) store_lanes(out2 + c + kLanes * v, x);
        }
    }
#else
    product_columns<0>(terms, nterms, bias, np, residual, 0, out, 0, 1);
    if (out2) std::memcpy(out2, out, sizeof(float) * static_cast<std::size_t>(np));
#endif
}

}  // namespace detail

/// Computes n output rows over columns [0, np) (see the file comment); at most 4 terms. The first
/// term's row stride picks a kernel with that stride built in when it is 8, 16 or 32 (the padded
/// widths of 1-8, 9-16 and 25-32 channels); a single row goes to product_one. The arithmetic is the
/// same in every kernel.
inline void product(const Term* terms, int nterms, const float* bias, int np, const float* residual, int rstride, float* out,
                    int ostride, int n) noexcept {
    if (n == 1) return detail::product_one(terms, nterms, bias, np, residual, out);
    switch (terms[0].stride) {
        case 8: detail::product_columns<8>(terms, nterms, bias, np, residual, rstride, out, ostride, n); break;
        case 16: detail::product_columns<16>(terms, nterms, bias, np, residual, rstride, out, ostride, n); break;
        case 32: detail::product_columns<32>(terms, nterms, bias, np, residual, rstride, out, ostride, n); break;
        default: detail::product_columns<0>(terms, nterms, bias, np, residual, rstride, out, ostride, n); break;
    }
}

}  // namespace wavenet
}  // namespace rtnt
