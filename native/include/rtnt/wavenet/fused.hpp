// The fused WaveNet layer (ungated, no head1x1, layer1x1 on, channels == bottleneck padded to 8
// or 16, no FiLM but NAM's activation_pre_film): z = conv + mix-in, z = z * S(c) + T(c) when
// activation_pre_film is on, a = act(z), skip += a, h_next = h + layer1x1(a), in one pass.
//
// The order of the arithmetic, per output element, is fixed so that every tile and the single-row
// path round alike (bit-identical output for any block partition):
//   z  = bias, then the FMA chain over the past taps k < K-1 (input channels in order), then the
//        mix-in (condition channels in order); then the current tap (k = K-1) in quads of 4 input
//        channels: the first quad continues z's chain, each further quad is its own chain from
//        zero, added to z in quad order;
//   S, T = (FiLM bias, then the FMA chain over the condition channels in order) for the scale
//        and the shift rows apart (product()'s order, as the generic path computes them);
//   z  = fma(z, S, T), or z * S for a FiLM without shift;
//   a  = act(z) (Activation::apply, or for single rows the same expression on registers);
//   h' = (layer1x1 bias, then its input channels in quads as above) + h.
// Only the current tap and layer1x1 depend on the sample just produced by the layer below, and
// in quads their chains are 4 FMAs deep, not cin. S and T depend on the condition alone: tiles
// compute them for their rows before the conv (film_rows), the single-row path with the past part.
// The single-row path (block size 1, LayerArray::fused_one) first computes the past part and the
// FiLM rows of every layer, the chains of several layers interleaved (fused_past_all), then runs
// the rest layer by layer, so a sample's latency through the stack is about quads + FiLM +
// activation + quads per layer rather than K * cin + 1 + cin.
#pragma once

#include "activation.hpp"
#include "history.hpp"
#include "product.hpp"

namespace rtnt {
namespace wavenet {
namespace detail {

/// Everything one fused layer pass reads and writes (see LayerArray::fused_layer).
struct FusedLayer {
    const float* window;  // the layer input history: lookback rows, then the n current rows
    int dilation, taps, channels;
    const float* cond;
    int cond_stride, cond_size;
    const float *conv_w, *conv_b, *mix_w, *l1_w, *l1_b;
    const Activation* act;
    float* skip;     // the skip accumulator rows
    float* scratch;  // one tile of activation outputs
    float* past;     // one tile of fused_past rows (tiles that run the rest in smaller tiles)
    History* next;   // the next layer's history, or nullptr: write `out` rows instead
    float* out;
    // activation_pre_film: its 1x1 of the condition and bias, rows of film_np floats (the scale in
    // columns [0, S), the shift, when on, in [S, 2S)); film_w nullptr when the FiLM is off.
    const float *film_w = nullptr, *film_b = nullptr;
    int film_np = 0;
    float* film = nullptr;  // the [S(c); T(c)] rows (2 * padded channels floats each) the rest reads
};

/// Input channels per chain of the current tap and of layer1x1 (see the file comment).
constexpr int kQuad = 4;

#if defined(__GNUC__) || defined(__clang__)
/// A vector at its natural alignment, for the rows of S floats (histories, scratch, skip, output:
/// aligned buffers with a stride of 8 or 16 floats). Unaligned 256-bit stores are split in two
/// on some targets (GCC's tuning for AMD Zen 1), and a split store cannot be forwarded to the
/// full-width load of the next layer, which then waits for the store to retire.
typedef float vfa __attribute__((vector_size(4 * kLanes), may_alias));

/// acc[r] += sum_{i<cin} x[r*S + i] * w[i*S] in quads: the first quad continues acc's chain, each
/// further quad is its own chain from zero, added to acc in order.
template <int R, int V, int S>
RTNT_ALWAYS_INLINE void accumulate_quads(vf (&acc)[R][V], const float* x, int cin, const float* w) noexcept {
    accumulate<R, V, S>(acc, Term{x, S, 0, 1, cin < kQuad ? cin : kQuad, w}, S);
    for (int i0 = kQuad; i0 < cin; i0 += kQuad) {
        vf part[R][V];
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < V; ++c) part[r][c] = vf{};
        accumulate<R, V, S>(part, Term{x + i0, S, 0, 1, cin - i0 < kQuad ? cin - i0 : kQuad, w + static_cast<long>(i0) * S}, S);
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < V; ++c) acc[r][c] = acc[r][c] + part[r][c];
    }
}

/// Lane by lane mask ? a : b, for a mask from a vector comparison (bitwise: GCC and Clang alike).
typedef int vmask __attribute__((vector_size(4 * kLanes)));
inline vf select_lanes(const vmask& mask, const vf& a, const vf& b) noexcept {
    return reinterpret_cast<vf>((mask & reinterpret_cast<vmask>(a)) | (~mask & reinterpret_cast<vmask>(b)));
}

/// The activation applied to registers, for the kinds whose Activation::apply is one elementwise
/// expression: the same operations in the same order lane by lane, so bit-identical to apply().
/// Returns false (acc untouched) for the other kinds.
template <int R, int V>
inline bool activate_lanes(const Activation& act, vf (&acc)[R][V]) noexcept {
    vf lo, zero{};
    switch (act.kind) {
        case ActKind::Identity: return true;
        case ActKind::Tanh:
            for (int r = 0; r < R; ++r)
                for (int c = 0; c < V; ++c) acc[r][c] = rtnt::detail::tanh_lanes(acc[r][c]);
            return true;
        case ActKind::Relu:
            for (int r = 0; r < R; ++r)
                for (int c = 0; c < V; ++c) acc[r][c] = select_lanes(acc[r][c] < zero, zero, acc[r][c]);
            return true;
        case ActKind::LeakyRelu:
        case ActKind::Prelu:
            if (act.kind == ActKind::Prelu && !act.slopes.empty()) return false;
            splat(lo, act.slope);
            for (int r = 0; r < R; ++r)
                for (int c = 0; c < V; ++c) acc[r][c] = select_lanes(acc[r][c] > zero, acc[r][c], lo * acc[r][c]);
            return true;
        default: return false;
    }
}

/// dst row r = [S(c); T(c)] of activation_pre_film for row t0 + r, r < R (rows of 2S floats):
/// per element the FiLM bias, then the condition channels in order.
template <int R, int V, int S>
RTNT_ALWAYS_INLINE void film_rows(const FusedLayer& f, int t0, float* dst) noexcept {
    for (int half = 0; half * S < f.film_np; ++half) {
        vf acc[R][V];
        for (int c = 0; c < V; ++c) {
            const vf b = load_lanes(f.film_b + half * S + kLanes * c);
            for (int r = 0; r < R; ++r) acc[r][c] = b;
        }
        const Term cond{f.cond + static_cast<long>(t0) * f.cond_stride, f.cond_stride, 0, 1, f.cond_size, f.film_w + half * S};
        accumulate<R, V, 0>(acc, cond, f.film_np);
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < V; ++c) *reinterpret_cast<vfa*>(dst + r * 2 * S + half * S + kLanes * c) = acc[r][c];
    }
}

/// acc[r] = acc[r] * S + T from film rows r (film_rows' layout); acc[r] * S without the shift.
template <int R, int V, int S>
RTNT_ALWAYS_INLINE void apply_film(vf (&acc)[R][V], const float* film, bool shift) noexcept {
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < V; ++c) {
            const vf scale = *reinterpret_cast<const vfa*>(film + r * 2 * S + kLanes * c);
            if (shift) {
                vf v = *reinterpret_cast<const vfa*>(film + r * 2 * S + S + kLanes * c);
                fma_lanes(v, acc[r][c], scale);
                acc[r][c] = v;
            } else {
                acc[r][c] = acc[r][c] * scale;
            }
        }
}

/// acc = bias + past taps + mix-in for rows t0 .. t0+R-1 (the part that does not read the rows
/// the layer below has just produced).
template <int R, int V, int S>
RTNT_ALWAYS_INLINE void fused_past(vf (&acc)[R][V], const FusedLayer& f, int t0) noexcept {
    for (int c = 0; c < V; ++c) {
        const vf b = load_lanes(f.conv_b + kLanes * c);
        for (int r = 0; r < R; ++r) acc[r][c] = b;
    }
    if (f.taps > 1) accumulate<R, V, S>(acc, Term{f.window + static_cast<long>(t0) * S, S, f.dilation * S, f.taps - 1, f.channels, f.conv_w}, S);
    accumulate<R, V, 0>(acc, Term{f.cond + static_cast<long>(t0) * f.cond_stride, f.cond_stride, 0, 1, f.cond_size, f.mix_w}, S);
}

/// The rest of rows t0 .. t0+R-1 from `past` = fused_past: the current tap, the FiLM (from
/// `film`, row r at film + r * 2S; unread when f.film_w is nullptr), the activation (on the
/// scratch tile), skip += a, and h + layer1x1(a) written to the next history (and its mirror)
/// or to `out`. A single row works on a local copy: the caller's array may be aliased by the
/// stores through float rows (vfa), so the compiler would store and reload it inside the
/// dependent chains (about 8% of block size 1 on Zen 1; tiles measured faster without the copy).
template <int R, int V, int S>
RTNT_ALWAYS_INLINE void fused_rest(vf (&past)[R][V], const FusedLayer& f, int t0, const float* film) noexcept {
    vf local[R][V];
    if constexpr (R == 1)
        for (int c = 0; c < V; ++c) local[0][c] = past[0][c];
    vf (&acc)[R][V] = R == 1 ? local : past;
    const float* h = f.window + static_cast<long>(t0 + (f.taps - 1) * f.dilation) * S;  // the current rows
    accumulate_quads<R, V, S>(acc, h, f.channels, f.conv_w + static_cast<long>(f.taps - 1) * f.channels * S);
    if (f.film_w) apply_film<R, V, S>(acc, film, f.film_np != S);
    float* a = f.scratch;
    // In registers for single rows (latency); multi-row tiles keep the scratch pass, which
    // measured faster there (the tanh constants then leave the tile's accumulators their registers).
    const bool in_registers = R == 1 && activate_lanes<R, V>(*f.act, acc);
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < V; ++c) *reinterpret_cast<vfa*>(a + r * S + kLanes * c) = acc[r][c];
    if (!in_registers) f.act->apply(a, R, S, S);
    for (int r = 0; r < R; ++r) {
        float* sk = f.skip + static_cast<long>(t0 + r) * S;
        for (int c = 0; c < V; ++c)
            *reinterpret_cast<vfa*>(sk + kLanes * c) = vf(*reinterpret_cast<const vfa*>(sk + kLanes * c)) +
                                                       vf(*reinterpret_cast<const vfa*>(a + r * S + kLanes * c));
    }
    for (int c = 0; c < V; ++c) {
        const vf b = *reinterpret_cast<const vfa*>(f.l1_b + kLanes * c);
        for (int r = 0; r < R; ++r) acc[r][c] = b;
    }
    accumulate_quads<R, V, S>(acc, a, f.channels, f.l1_w);
    for (int r = 0; r < R; ++r) {
        float* dst = f.next ? f.next->next_row(t0 + r) : f.out + static_cast<long>(t0 + r) * S;
        const long mirror = f.next ? f.next->mirror() : 0;
        for (int c = 0; c < V; ++c) {
            const vf v = acc[r][c] + vf(*reinterpret_cast<const vfa*>(h + r * S + kLanes * c));
            *reinterpret_cast<vfa*>(dst + kLanes * c) = v;
            if (mirror) *reinterpret_cast<vfa*>(dst + mirror + kLanes * c) = v;
        }
    }
}

/// Rows of NC * 8 padded channels in register tiles: R rows of two accumulator sets (the running
/// chain and one quad chain) fit beside a weight row and a broadcast.
template <int NC>
constexpr int fused_tile_rows() {
    constexpr int V = NC * 8 / kLanes;
    constexpr int r = (rtnt::detail::kVectorRegisters - V - 1) / (2 * V);
    return r < 1 ? 1 : (r > 12 ? 12 : r);
}

/// Rows t0 .. t0+R-1. A tile taller than fused_tile_rows (its multiple) computes the past part
/// for all R rows (one accumulator set) and the rest in tiles of fused_tile_rows via f.past. The
/// FiLM rows (R of them, in f.film) come first, while no accumulator is live.
template <int R, int NC>
RTNT_ALWAYS_INLINE void fused_tile(const FusedLayer& f, int t0) noexcept {
    constexpr int V = NC * 8 / kLanes, S = NC * 8, RR = fused_tile_rows<NC>();
    if (f.film_w) film_rows<R, V, S>(f, t0, f.film);
    vf acc[R][V];
    fused_past<R, V, S>(acc, f, t0);
    if constexpr (R > RR && R % RR == 0) {
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < V; ++c) *reinterpret_cast<vfa*>(f.past + r * S + kLanes * c) = acc[r][c];
        for (int r0 = 0; r0 < R; r0 += RR) {
            vf rest[RR][V];
            for (int r = 0; r < RR; ++r)
                for (int c = 0; c < V; ++c) rest[r][c] = *reinterpret_cast<const vfa*>(f.past + (r0 + r) * S + kLanes * c);
            fused_rest<RR, V, S>(rest, f, t0 + r0, f.film + r0 * 2 * S);
        }
    } else {
        fused_rest<R, V, S>(acc, f, t0, f.film);
    }
}

/// Rows per fused_tile: the past part's register tile when the rest's tiles divide it.
template <int NC>
constexpr int fused_rows_per_tile() {
    constexpr int R = rtnt::detail::tile_rows<NC>(), RR = fused_tile_rows<NC>();
    return R > RR && R % RR == 0 ? R : RR;
}

/// n rows in tiles of R, then R/2, ..., 1 (the same arithmetic per element in every tile).
template <int R, int NC>
inline void fused_rows(const FusedLayer& f, int t0, int n) noexcept {
    int t = t0;
    for (; t + R <= t0 + n; t += R) fused_tile<R, NC>(f, t);
    if constexpr (R > 1) {
        if (t < t0 + n) fused_rows<R / 2, NC>(f, t, t0 + n - t);
    }
}

/// Single row, first half, for P layers with the same taps and channels at once: pre[p] =
/// fused_past of row 0 of layer f[p] and, with activation_pre_film on, f[p].film = its film_rows,
/// the P layers' chains interleaved (each alone is latency bound). The arithmetic per element is
/// that of fused_past and film_rows.
template <int P, int NC>
inline void fused_past_layers(const FusedLayer* f, float* pre) noexcept {
    constexpr int V = NC * 8 / kLanes, S = NC * 8;
    vf acc[P][V];
    for (int p = 0; p < P; ++p)
        for (int c = 0; c < V; ++c) acc[p][c] = load_lanes(f[p].conv_b + kLanes * c);
    const int past = f[0].taps - 1, cin = f[0].channels;
    for (int k = 0; k < past; ++k)
        for (int i = 0; i < cin; ++i)
            for (int p = 0; p < P; ++p) {
                vf xb;
                splat(xb, f[p].window[static_cast<long>(k) * f[p].dilation * S + i]);
                const float* w = f[p].conv_w + (static_cast<long>(k) * cin + i) * S;
                for (int c = 0; c < V; ++c) fma_lanes(acc[p][c], xb, load_lanes(w + kLanes * c));
            }
    for (int j = 0; j < f[0].cond_size; ++j)
        for (int p = 0; p < P; ++p) {
            vf xb;
            splat(xb, f[p].cond[j]);
            for (int c = 0; c < V; ++c) fma_lanes(acc[p][c], xb, load_lanes(f[p].mix_w + j * S + kLanes * c));
        }
    for (int p = 0; p < P; ++p)
        for (int c = 0; c < V; ++c) *reinterpret_cast<vfa*>(pre + p * S + kLanes * c) = acc[p][c];
    if (!f[0].film_w) return;  // one FiLM switch for every layer of an array
    for (int half = 0; half * S < f[0].film_np; ++half) {
        for (int p = 0; p < P; ++p)
            for (int c = 0; c < V; ++c) acc[p][c] = load_lanes(f[p].film_b + half * S + kLanes * c);
        for (int j = 0; j < f[0].cond_size; ++j)
            for (int p = 0; p < P; ++p) {
                vf xb;
                splat(xb, f[p].cond[j]);
                const float* w = f[p].film_w + static_cast<long>(j) * f[p].film_np + half * S;
                for (int c = 0; c < V; ++c) fma_lanes(acc[p][c], xb, load_lanes(w + kLanes * c));
            }
        for (int p = 0; p < P; ++p)
            for (int c = 0; c < V; ++c) *reinterpret_cast<vfa*>(f[p].film + half * S + kLanes * c) = acc[p][c];
    }
}

/// Layers interleaved by fused_past_layers: as many chains as keep the FMA units busy.
template <int NC>
constexpr int past_layers() {
    constexpr int V = NC * 8 / kLanes;
    return V >= 2 ? 4 : 8;
}

/// fused_past_layers over layers [0, L): runs of up to P layers with equal taps, then P/2, ..., 1.
template <int P, int NC>
inline void fused_past_all(const FusedLayer* f, int L, float* pre) noexcept {
    constexpr int S = NC * 8;
    int l = 0;
    while (l < L) {
        int run = 1;
        while (run < P && l + run < L && f[l + run].taps == f[l].taps) ++run;
        if (run == P) {
            fused_past_layers<P, NC>(f + l, pre + static_cast<long>(l) * S);
            l += P;
        } else if constexpr (P > 1) {
            fused_past_all<P / 2, NC>(f + l, run, pre + static_cast<long>(l) * S);
            l += run;
        }
    }
}

/// Single row, second half: fused_rest from pre and f.film (bit-identical to fused_tile<1, NC>).
template <int NC>
inline void fused_rest_row(const FusedLayer& f, const float* pre) noexcept {
    constexpr int V = NC * 8 / kLanes, S = NC * 8;
    vf acc[1][V];
    for (int c = 0; c < V; ++c) acc[0][c] = *reinterpret_cast<const vfa*>(pre + kLanes * c);
    fused_rest<1, V, S>(acc, f, 0, f.film);
}

constexpr bool kHasFusedLayer = true;
#else
template <int R, int NC>
inline void fused_rows(const FusedLayer&, int, int) noexcept {}
template <int P, int NC>
inline void fused_past_all(const FusedLayer*, int, float*) noexcept {}
template <int NC>
constexpr int past_layers() {
    return 1;
}
template <int NC>
inline void fused_rest_row(const FusedLayer&, const float*) noexcept {}
template <int NC>
constexpr int fused_tile_rows() {
    return 1;
}
constexpr bool kHasFusedLayer = false;
#endif

}  // namespace detail
}  // namespace wavenet
}  // namespace rtnt
