// The fused WaveNet layer for arrays of at most 4 channels (A2-Lite has 3) on AVX2 + FMA, vectorised
// over time: each channel's history is its own ring of floats (History with a row stride of 1), so one
// 8-lane register holds 8 consecutive samples of one channel, every lane does useful work, and a weight
// is one pre-broadcast vector (no permutes). Lanes never mix, so any block partition, the tail of a
// piece included (computed in whole registers, the lanes past its end discarded), gives the same bits.
// Per element the arithmetic has one fixed order: bias, the conv's past taps (all but the last) and input
// channels in order, the mix-in, the current tap's input channels in order, the activation, skip += a, and
// (residual + layer1x1's bias) + the layer1x1 inputs in order. At block size 1 (narrow_rest) that order keeps
// the mix-in and the residual + bias off the chain from one layer's output to the next.
#pragma once

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "activation.hpp"
#include "fused.hpp"

namespace rtnt {
namespace wavenet {
namespace detail {

/// Samples a narrow layer pass may compute past the end of its piece (whole registers): the histories,
/// condition and scratch columns are this much longer than the rows they hold.
constexpr int kColumnSlack = 32;  // >= 8 * narrow_tile_registers() - 1

/// Everything one narrow layer pass reads and writes. The weights are broadcast, 8 floats per value:
/// conv [(k*C + i)*C + o], bias [o], mix-in [o], layer1x1 [i*C + o] and its bias [o].
struct NarrowLayer {
    const float* window[4];  // per input channel: lookback samples, then the piece's samples
    int dilation, taps;
    const float* cond;       // the mono condition of the piece, contiguous (kColumnSlack readable past its end)
    const float *conv_w, *conv_b, *mix_w, *l1_w, *l1_b;
    const Activation* act;
    float* skip[4];          // per channel: the skip accumulator of the piece
    float* out[4];           // per channel: the residual stream the layer writes (the next layer's input)
    float* scratch;          // C x 8T floats (at most 128): one tile's activation inputs, per channel
};

/// x[0..n) = act(x) for channel `channel` (PReLU with one slope per channel takes that channel's).
inline void activate_channel(const Activation& act, int channel, float* x, int n) noexcept {
    if (act.kind == ActKind::Prelu && !act.slopes.empty()) {
        const float s = act.slopes[static_cast<std::size_t>(channel)];
        for (int t = 0; t < n; ++t) x[t] = x[t] > 0.0f ? x[t] : s * x[t];
        return;
    }
    act.apply(x, 1, n, n);
}

#if defined(__AVX2__) && defined(__FMA__)
constexpr bool kHasNarrowLayer = true;

/// Samples t0 .. t0 + 8T - 1 of a layer with C channels.
template <int C, int T>
inline void narrow_tile(const NarrowLayer& f, int t0) noexcept {
    __m256 acc[C][T];
    for (int o = 0; o < C; ++o)
        for (int v = 0; v < T; ++v) acc[o][v] = _mm256_loadu_ps(f.conv_b + o * 8);
    const auto tap = [&](int k) {
        const long at = t0 + static_cast<long>(k) * f.dilation;
        for (int i = 0; i < C; ++i) {
            const float* w = f.conv_w + (k * C + i) * C * 8;
            for (int v = 0; v < T; ++v) {
                const __m256 x = _mm256_loadu_ps(f.window[i] + at + 8 * v);
                for (int o = 0; o < C; ++o) acc[o][v] = _mm256_fmadd_ps(x, _mm256_loadu_ps(w + o * 8), acc[o][v]);
            }
        }
    };
    for (int k = 0; k + 1 < f.taps; ++k) tap(k);
    for (int v = 0; v < T; ++v) {
        const __m256 c = _mm256_loadu_ps(f.cond + t0 + 8 * v);
        for (int o = 0; o < C; ++o) acc[o][v] = _mm256_fmadd_ps(c, _mm256_loadu_ps(f.mix_w + o * 8), acc[o][v]);
    }
    tap(f.taps - 1);
    for (int o = 0; o < C; ++o) {
        for (int v = 0; v < T; ++v) _mm256_storeu_ps(f.scratch + (o * T + v) * 8, acc[o][v]);
        activate_channel(*f.act, o, f.scratch + o * T * 8, 8 * T);
    }
    __m256 a[C][T];
    for (int o = 0; o < C; ++o)
        for (int v = 0; v < T; ++v) {
            a[o][v] = _mm256_loadu_ps(f.scratch + (o * T + v) * 8);
            float* sk = f.skip[o] + t0 + 8 * v;
            _mm256_storeu_ps(sk, _mm256_add_ps(_mm256_loadu_ps(sk), a[o][v]));
        }
    const long current = t0 + static_cast<long>(f.taps - 1) * f.dilation;  // the layer's input samples
    for (int o = 0; o < C; ++o)
        for (int v = 0; v < T; ++v) {
            __m256 h = _mm256_add_ps(_mm256_loadu_ps(f.window[o] + current + 8 * v), _mm256_loadu_ps(f.l1_b + o * 8));
            for (int i = 0; i < C; ++i) h = _mm256_fmadd_ps(a[i][v], _mm256_loadu_ps(f.l1_w + (i * C + o) * 8), h);
            _mm256_storeu_ps(f.out[o] + t0 + 8 * v, h);
        }
}

/// Registers of 8 samples per channel in one tile: as many as leave room for the input and a weight.
template <int C>
constexpr int narrow_tile_registers() {
    return C <= 3 ? 4 : 2;
}

/// n samples: tiles of 8 * narrow_tile_registers (8 for a piece of at most 8), the last one reaching past n
/// into the slack.
template <int C>
inline void narrow_rows(const NarrowLayer& f, int n) noexcept {
    constexpr int T = narrow_tile_registers<C>();
    if (n <= 8) return narrow_tile<C, 1>(f, 0);
    for (int t = 0; t < n; t += 8 * T) narrow_tile<C, T>(f, t);
}

/// One sample of a narrow layer, 4 lanes over the output channels, in two halves so that the past taps of
/// every layer can run before any layer's current sample is known (their chains then overlap). The weights
/// are the packed rows (8 floats per input, output channel o in column o), not the broadcast ones.
struct NarrowSample {
    const float* window[4];  // per input channel: the lookback samples (the current one follows)
    int dilation, taps, channels;
    const float *conv_w, *conv_b, *mix_w, *l1_w, *l1_b;
    const Activation* act;
};

/// The past part of P layers with equal taps and channels, their chains interleaved (each alone is latency
/// bound): past + 4p = bias + the conv's past taps (k < taps - 1, inputs in order) of layer f[p], the start of
/// each output channel's chain.
template <int P>
inline void narrow_past_layers(const NarrowSample* f, float* past) noexcept {
    __m128 acc[P];
    for (int p = 0; p < P; ++p) acc[p] = _mm_loadu_ps(f[p].conv_b);
    const int C = f[0].channels;
    for (int k = 0; k + 1 < f[0].taps; ++k)
        for (int i = 0; i < C; ++i)
            for (int p = 0; p < P; ++p)
                acc[p] = _mm_fmadd_ps(_mm_set1_ps(f[p].window[i][static_cast<long>(k) * f[p].dilation]),
                                      _mm_loadu_ps(f[p].conv_w + (k * C + i) * 8), acc[p]);
    for (int p = 0; p < P; ++p) _mm_storeu_ps(past + 4 * p, acc[p]);
}

/// narrow_past_layers over layers [0, L): runs of 4 layers with equal taps, then 2, then single ones.
inline void narrow_past_all(const NarrowSample* f, int L, float* past) noexcept {
    for (int l = 0; l < L;) {
        int run = 1;
        while (run < 4 && l + run < L && f[l + run].taps == f[l].taps) ++run;
        if (run == 4) narrow_past_layers<4>(f + l, past + 4 * l), l += 4;
        else if (run >= 2) narrow_past_layers<2>(f + l, past + 4 * l), l += 2;
        else narrow_past_layers<1>(f + l, past + 4 * l), l += 1;
    }
}

/// act(v) lane by lane, bit-identical to Activation::apply: through activate_lanes (fused.hpp) on v widened
/// to 8 lanes (the upper ones zero) where that kind is computed in registers, through apply() otherwise.
inline __m128 activate4(const Activation& act, __m128 v) noexcept {
    vf wide[1][1] = {{reinterpret_cast<vf>(_mm256_set_m128(_mm_setzero_ps(), v))}};
    if (activate_lanes<1, 1>(act, wide)) return _mm256_castps256_ps128(reinterpret_cast<__m256>(wide[0][0]));
    alignas(16) float out[4];
    _mm_store_ps(out, v);
    act.apply(out, 1, 4, 4);
    return _mm_load_ps(out);
}

/// Lane i of v in every lane.
template <int I>
inline __m128 lane(__m128 v) noexcept {
    return _mm_shuffle_ps(v, v, I * 0x55);
}

/// The rest of a sample of a layer with C channels from `past` (narrow_past_layers' 4 floats): the mix-in of
/// condition c, the current tap over x (the layer's input, lanes past C zero), the activation, skip += a, and
/// x = (x + layer1x1's bias) + layer1x1(a), the layer's output (lanes past C stay zero), all in registers. Only
/// the current tap, the activation and layer1x1's inputs lie on the chain from x to the next x.
template <int C>
inline void narrow_rest(const NarrowSample& f, const float* past, __m128& x, float c, __m128& skip) noexcept {
    __m128 acc = _mm_fmadd_ps(_mm_set1_ps(c), _mm_loadu_ps(f.mix_w), _mm_loadu_ps(past));
    const float* w = f.conv_w + (f.taps - 1) * C * 8;
    acc = _mm_fmadd_ps(lane<0>(x), _mm_loadu_ps(w), acc);
    if constexpr (C > 1) acc = _mm_fmadd_ps(lane<1>(x), _mm_loadu_ps(w + 8), acc);
    if constexpr (C > 2) acc = _mm_fmadd_ps(lane<2>(x), _mm_loadu_ps(w + 16), acc);
    if constexpr (C > 3) acc = _mm_fmadd_ps(lane<3>(x), _mm_loadu_ps(w + 24), acc);
    const __m128 a = activate4(*f.act, acc);
    skip = _mm_add_ps(skip, a);
    __m128 h = _mm_add_ps(x, _mm_loadu_ps(f.l1_b));
    h = _mm_fmadd_ps(lane<0>(a), _mm_loadu_ps(f.l1_w), h);
    if constexpr (C > 1) h = _mm_fmadd_ps(lane<1>(a), _mm_loadu_ps(f.l1_w + 8), h);
    if constexpr (C > 2) h = _mm_fmadd_ps(lane<2>(a), _mm_loadu_ps(f.l1_w + 16), h);
    if constexpr (C > 3) h = _mm_fmadd_ps(lane<3>(a), _mm_loadu_ps(f.l1_w + 24), h);
    x = h;
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
struct NarrowSample {
    const float* window[4];
    int dilation, taps, channels;
    const float *conv_w, *conv_b, *mix_w, *l1_w, *l1_b;
    const Activation* act;
};
inline void narrow_layer(const NarrowLayer&, int, int) noexcept {}
inline void narrow_past_all(const NarrowSample*, int, float*) noexcept {}

#endif

}  // namespace detail
}  // namespace wavenet
}  // namespace rtnt
