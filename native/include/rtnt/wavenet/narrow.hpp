// The fused WaveNet layer for arrays of at most 4 channels (A2-Lite has 3) on AVX2 + FMA: rows are
// stored 4 floats apart, so one 8-lane register holds two consecutive rows, and an in-lane permute
// broadcasts channel i of both rows at once. Half the FMAs of 8-lane rows with 5 padding lanes.
// Per element the arithmetic has one fixed order in every tile: bias, the conv taps and input
// channels in order, the mix-in, the activation, skip += a, layer1x1 (bias, then inputs in order)
// + residual (at most 4 input channels: one chain is as short as the wide layer's quads). Lanes of one register never mix, so it does not matter which half a row is in.
#pragma once

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "activation.hpp"
#include "history.hpp"

namespace rtnt {
namespace wavenet {
namespace detail {

/// Everything one narrow fused layer pass reads and writes. Weight rows and biases hold 8 floats:
/// the 4 output channels twice (one copy per row of a register).
struct NarrowLayer {
    const float* window;  // layer input history, rows of 4 floats: lookback rows, then the n current rows
    int dilation, taps;
    const float* cond;    // the mono condition, cond_stride apart
    int cond_stride;
    const float *conv_w, *conv_b, *mix_w, *l1_w, *l1_b;
    const Activation* act;
    float* skip;          // skip accumulator rows of 4 floats
    float* scratch;       // one tile of activation outputs (rows of 4 floats)
    History* next;        // the next layer's history, or nullptr: write `out` rows (4 floats) instead
    float* out;
};

#if defined(__AVX2__) && defined(__FMA__)
constexpr bool kHasNarrowLayer = true;

/// acc += lane-i broadcast of each row in x (both halves) times w[i], for i < C in order.
template <int C>
inline void narrow_channels(__m256& acc, __m256 x, const __m256 (&w)[4]) noexcept {
    acc = _mm256_fmadd_ps(_mm256_permute_ps(x, 0x00), w[0], acc);
    if constexpr (C > 1) acc = _mm256_fmadd_ps(_mm256_permute_ps(x, 0x55), w[1], acc);
    if constexpr (C > 2) acc = _mm256_fmadd_ps(_mm256_permute_ps(x, 0xAA), w[2], acc);
    if constexpr (C > 3) acc = _mm256_fmadd_ps(_mm256_permute_ps(x, 0xFF), w[3], acc);
}

/// Rows t0 .. t0+rows-1 (rows = 2R, or 2R-1 for a last odd row) of a narrow layer with C channels.
template <int R, int C>
inline void narrow_tile(const NarrowLayer& f, int t0, int rows) noexcept {
    __m256 acc[R];
    __m256 w[4];
    const __m256 bias = _mm256_loadu_ps(f.conv_b);
    for (int r = 0; r < R; ++r) acc[r] = bias;
    for (int k = 0; k < f.taps; ++k) {
        const float* x = f.window + static_cast<long>(t0 + k * f.dilation) * 4;
        for (int i = 0; i < C; ++i) w[i] = _mm256_loadu_ps(f.conv_w + (k * C + i) * 8);
        for (int r = 0; r < R; ++r) narrow_channels<C>(acc[r], _mm256_loadu_ps(x + r * 8), w);
    }
    const __m256 mix = _mm256_loadu_ps(f.mix_w);
    for (int r = 0; r < R; ++r) {
        const int t = t0 + 2 * r;
        const float second = t + 1 < t0 + rows ? f.cond[static_cast<long>(t + 1) * f.cond_stride] : 0.0f;
        const __m256 c = _mm256_set_m128(_mm_set1_ps(second), _mm_set1_ps(f.cond[static_cast<long>(t) * f.cond_stride]));
        acc[r] = _mm256_fmadd_ps(c, mix, acc[r]);
        _mm256_storeu_ps(f.scratch + r * 8, acc[r]);
    }
    f.act->apply(f.scratch, 2 * R, 4, 4);
    for (int r = 0; r < R; ++r) {
        float* sk = f.skip + static_cast<long>(t0 + 2 * r) * 4;
        if (2 * r + 1 < rows) _mm256_storeu_ps(sk, _mm256_add_ps(_mm256_loadu_ps(sk), _mm256_loadu_ps(f.scratch + r * 8)));
        else _mm_storeu_ps(sk, _mm_add_ps(_mm_loadu_ps(sk), _mm_loadu_ps(f.scratch + r * 8)));
    }
    for (int i = 0; i < C; ++i) w[i] = _mm256_loadu_ps(f.l1_w + i * 8);
    const __m256 l1_bias = _mm256_loadu_ps(f.l1_b);
    const float* h = f.window + static_cast<long>(t0 + (f.taps - 1) * f.dilation) * 4;  // the current rows
    const long mirror = f.next ? f.next->mirror() : 0;
    for (int r = 0; r < R; ++r) {
        __m256 v = l1_bias;
        narrow_channels<C>(v, _mm256_loadu_ps(f.scratch + r * 8), w);
        v = _mm256_add_ps(v, _mm256_loadu_ps(h + r * 8));
        const int t = t0 + 2 * r;
        const __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
        float* d0 = f.next ? f.next->next_row(t) : f.out + static_cast<long>(t) * 4;
        _mm_storeu_ps(d0, lo);
        if (mirror) _mm_storeu_ps(d0 + mirror, lo);
        if (2 * r + 1 < rows) {
            float* d1 = f.next ? f.next->next_row(t + 1) : f.out + static_cast<long>(t + 1) * 4;
            _mm_storeu_ps(d1, hi);
            if (mirror) _mm_storeu_ps(d1 + mirror, hi);
        }
    }
}

/// n rows: tiles of 16, 8, 4 and 2 rows, then a last odd row.
template <int C>
inline void narrow_rows(const NarrowLayer& f, int n) noexcept {
    int t = 0;
    for (; t + 16 <= n; t += 16) narrow_tile<8, C>(f, t, 16);
    if (t + 8 <= n) narrow_tile<4, C>(f, t, 8), t += 8;
    if (t + 4 <= n) narrow_tile<2, C>(f, t, 4), t += 4;
    if (t + 2 <= n) narrow_tile<1, C>(f, t, 2), t += 2;
    if (t < n) narrow_tile<1, C>(f, t, 1);
}

inline void narrow_layer(const NarrowLayer& f, int channels, int n) noexcept {
    switch (channels) {
        case 1: narrow_rows<1>(f, n); break;
        case 2: narrow_rows<2>(f, n); break;
        case 3: narrow_rows<3>(f, n); break;
        default: narrow_rows<4>(f, n); break;
    }
}
#else
constexpr bool kHasNarrowLayer = false;
inline void narrow_layer(const NarrowLayer&, int, int) noexcept {}
#endif

}  // namespace detail
}  // namespace wavenet
}  // namespace rtnt
