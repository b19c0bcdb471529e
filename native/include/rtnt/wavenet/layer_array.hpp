// One WaveNet layer array, streamed in pieces of time-major rows: rechannel, the dilated-conv
// layers with their skip and residual updates (and NAM's FiLMs: activation_pre_film alone in the fused
// path too, every other one in the generic path), and the head rechannel.
#pragma once

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "../core/aligned.hpp"
#include "../core/tap_gemm.hpp"
#include "../nam/weights.hpp"
#include "fused.hpp"
#include "history.hpp"
#include "narrow.hpp"
#include "product.hpp"
#include "spec.hpp"

namespace rtnt {
namespace wavenet {

namespace detail {

/// Reads a NAM (grouped) conv weight, out x in/groups x K with the tap index fastest, into the
/// tap-major packed layout w[(k*in + i)*np + col(o)] (off-group entries stay zero).
template <typename Col>
inline void read_conv(nam::WeightCursor& wc, int out, int in, int K, int groups, int np, Col col, FloatVec& w) {
    w.assign(static_cast<std::size_t>(K) * in * np, 0.0f);
    const int og = out / groups, ig = in / groups;
    for (int o = 0; o < out; ++o) {
        const int g = o / og;
        for (int ii = 0; ii < ig; ++ii)
            for (int k = 0; k < K; ++k) w[(static_cast<std::size_t>(k) * in + g * ig + ii) * np + col(o)] = wc.next();
    }
}

template <typename Col>
inline void read_bias(nam::WeightCursor& wc, int out, int np, Col col, FloatVec& b) {
    b.assign(static_cast<std::size_t>(np), 0.0f);
    for (int o = 0; o < out; ++o) b[col(o)] = wc.next();
}

inline int identity_col(int o) noexcept { return o; }

}  // namespace detail

class LayerArray {
public:
    /// Consumes this array's weights from wc in NAM Core's order.
    LayerArray(const ArraySpec& spec, nam::WeightCursor& wc)
        : spec_(spec), cp_(padded(spec.channels)), bp_(padded(spec.bottleneck)), sp_(padded(spec.skip_width())),
          hp_(padded(spec.head_out)) {
        using detail::identity_col;
        const ArraySpec& s = spec_;
        detail::read_conv(wc, s.channels, s.input_size, 1, 1, cp_, identity_col, rechannel_w_);
        zero_bias_.assign(static_cast<std::size_t>(std::max({cp_, bp_ * 2, sp_, hp_})), 0.0f);
        layers_.resize(s.layers.size());
        for (std::size_t l = 0; l < s.layers.size(); ++l) {
            const LayerSpec& ls = s.layers[l];
            LayerState& st = layers_[l];
            const int B = s.bottleneck;
            const int z = s.conv_out(ls);
            st.zp = ls.gating == Gating::None ? bp_ : 2 * bp_;
            // Gated/blended: the gate half starts at a padded column so both halves are SIMD-aligned.
            const int bp = bp_;
            auto zcol = [B, bp](int o) { return o < B ? o : bp + (o - B); };
            detail::read_conv(wc, z, s.channels, ls.kernel_size, s.groups_input, st.zp, zcol, st.conv_w);
            detail::read_bias(wc, z, st.zp, zcol, st.conv_b);
            detail::read_conv(wc, z, s.condition_size, 1, s.groups_mixin, st.zp, zcol, st.mix_w);
            if (s.layer1x1) {
                detail::read_conv(wc, s.channels, B, 1, s.layer1x1_groups, cp_, identity_col, st.l1_w);
                detail::read_bias(wc, s.channels, cp_, identity_col, st.l1_b);
            }
            if (s.head1x1) {
                detail::read_conv(wc, s.head1x1_out, B, 1, s.head1x1_groups, sp_, identity_col, st.h1_w);
                detail::read_bias(wc, s.head1x1_out, sp_, identity_col, st.h1_b);
            }
            for (int k = 0; k < kFilmKeys; ++k)
                if (s.films[k].active) read_film(wc, static_cast<FilmKey>(k), ls, zcol, st.films[k]);
        }
        kp_ = padded(s.condition_size);
        fused_ = detail::kHasFusedLayer && s.layer1x1 && !s.head1x1 && cp_ == bp_ && bp_ <= 16 && fused_films(s);
        for (const LayerSpec& ls : s.layers) fused_ = fused_ && ls.gating == Gating::None;
        narrow_ = fused_ && detail::kHasNarrowLayer && s.channels <= 4 && s.condition_size == 1 && !s.any_film();
        if (narrow_)
            for (std::size_t l = 0; l < layers_.size(); ++l) broadcast_narrow(layers_[l], s.layers[l].kernel_size);
        hs_ = narrow_ ? 4 : cp_;
        ss_ = narrow_ ? 4 : sp_;
        detail::read_conv(wc, s.head_out, s.skip_width(), s.head_kernel, 1, hp_, identity_col, head_w_);
        if (s.head_bias) detail::read_bias(wc, s.head_out, hp_, identity_col, head_b_);
        else head_b_.assign(static_cast<std::size_t>(hp_), 0.0f);
    }

    const ArraySpec& spec() const noexcept { return spec_; }

    /// How process() runs this array: "narrow" or "fused" (detail::narrow_layer, detail::fused_rows
    /// and, at block size 1, fused_one), or "generic" (a product() per step, FiLMs apart).
    const char* kernel() const noexcept { return narrow_ ? "narrow" : (fused_ ? "fused" : "generic"); }

    void prepare(int max_rows) {
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            const LayerSpec& ls = spec_.layers[l];
            const int lookback = (ls.kernel_size - 1) * ls.dilation;
            if (!narrow_) layers_[l].history.prepare(lookback, hs_, max_rows);
            else
                for (int c = 0; c < spec_.channels; ++c) layers_[l].columns[c].prepare(lookback, 1, max_rows, detail::kColumnSlack);
        }
        if (narrow_) {
            const std::size_t column = static_cast<std::size_t>(max_rows + detail::kColumnSlack);
            columns_out_.assign(4 * column, 0.0f);
            columns_skip_.assign(4 * column, 0.0f);
            columns_cond_.assign(column, 0.0f);
            columns_scratch_.assign(4 * 32, 0.0f);
            samples_.resize(layers_.size());
            for (std::size_t l = 0; l < layers_.size(); ++l) {
                const LayerState& st = layers_[l];
                const LayerSpec& ls = spec_.layers[l];
                samples_[l] = {{}, ls.dilation, ls.kernel_size, spec_.channels, st.conv_w.data(), st.conv_b.data(),
                               st.mix_w.data(), st.l1_w.data(), st.l1_b.data(), &ls.activation};
            }
        }
        head_history_.prepare(static_cast<int>(spec_.head_lookback()), ss_, max_rows);
        const std::size_t rows = static_cast<std::size_t>(max_rows);
        z_.assign(rows * 2 * bp_, 0.0f);
        a_.assign(rows * bp_, 0.0f);
        h_.assign(rows * cp_, 0.0f);
        residual_out_.assign(rows * cp_, 0.0f);
        acc_.assign(rows * sp_, 0.0f);
        head_out_.assign(rows * hp_, 0.0f);
        if (spec_.any_film() && !fused_) {  // the generic path's FiLM buffers
            const std::size_t widest = static_cast<std::size_t>(std::max({cp_, 2 * bp_, kp_, sp_}));
            film_.assign(rows * 2 * widest, 0.0f);
            m_.assign(rows * 2 * bp_, 0.0f);
            cf_.assign(rows * kp_, 0.0f);
            hf_.assign(rows * cp_, 0.0f);
            r_.assign(rows * std::max(cp_, sp_), 0.0f);
        }
        pre_.assign(std::max<std::size_t>(layers_.size(), 12) * static_cast<std::size_t>(bp_), 0.0f);
        if (fused_ && spec_.any_film()) fused_film_.assign(std::max<std::size_t>(layers_.size(), 12) * 2 * bp_, 0.0f);
        // The wide fused layers' FusedLayers, built once: per row or piece only their window and condition change.
        rows_.resize(layers_.size());
        if (fused_ && !narrow_)
            for (std::size_t l = 0; l < layers_.size(); ++l) rows_[l] = fused_row(l);
    }

    void reset() noexcept {
        for (auto& st : layers_) {
            st.history.reset();
            for (History& c : st.columns) c.reset();
        }
        head_history_.reset();
    }

    /// n rows through the array. `in`: the layer input (input_size channels, row stride
    /// in_stride); `cond`: the condition; `skip_in`: the previous array's head output (row stride
    /// skip_stride), which starts the skip accumulator (nullptr: zeros). With `settle`, every history is filled with
    /// the row it receives (n must be 1): the state of a constant input held forever.
    void process(const float* in, int in_stride, const float* cond, int cond_stride, const float* skip_in, int skip_stride,
                 int n, bool settle) noexcept {
        if (n == 1 && !settle && fused_ && !narrow_) return process_one(in, in_stride, cond, skip_in);
        const ArraySpec& s = spec_;
        Term rechannel{in, in_stride, 0, 1, s.input_size, rechannel_w_.data()};
        product(&rechannel, 1, zero_bias_.data(), cp_, nullptr, 0, h_.data(), cp_, n);
        if (narrow_) {
            narrow_layers(cond, cond_stride, skip_in, skip_stride, n, settle);
        } else {
            feed(0, h_.data(), cond, cond_stride, n, settle);
            wide_layers(cond, cond_stride, skip_in, skip_stride, n, settle);
        }
        head(n, settle);
    }

    /// The layers of a wide (or generic) array over n rows: h_ holds the rechannel output, fed to layer 0.
    void wide_layers(const float* cond, int cond_stride, const float* skip_in, int skip_stride, int n, bool settle) noexcept {
        const ArraySpec& s = spec_;
        const std::size_t L = layers_.size();
        if (skip_in) {
            for (int t = 0; t < n; ++t)
                std::memcpy(acc_.data() + static_cast<long>(t) * ss_, skip_in + static_cast<long>(t) * skip_stride,
                            sizeof(float) * static_cast<std::size_t>(ss_));
        } else {
            std::fill(acc_.begin(), acc_.begin() + static_cast<long>(n) * ss_, 0.0f);
        }

        for (std::size_t l = 0; l < L; ++l) {
            LayerState& st = layers_[l];
            const LayerSpec& ls = s.layers[l];
            if (fused_) {
                fused_layer(l, cond, cond_stride, n, settle);
                continue;
            }
            // The layer's input rows: its history holds them, or FiLM_conv_pre of them (then h_ holds them).
            const float* h_cur = has(st, FilmKey::ConvPre) ? h_.data() : st.history.newest(n);
            conv_and_mixin(st, ls, cond, cond_stride, n);
            film(st, FilmKey::ActivationPre, z_.data(), st.zp, cond, cond_stride, n);
            float* a = activate(ls, st.zp, n);
            film(st, FilmKey::ActivationPost, a, bp_, cond, cond_stride, n);

            if (s.head1x1 && has(st, FilmKey::Head1x1Post)) {
                Term t{a, bp_, 0, 1, s.bottleneck, st.h1_w.data()};
                product(&t, 1, st.h1_b.data(), sp_, nullptr, 0, r_.data(), sp_, n);
                film(st, FilmKey::Head1x1Post, r_.data(), sp_, cond, cond_stride, n);
                add_rows(acc_.data(), r_.data(), n, sp_, sp_);
            } else if (s.head1x1) {
                Term t{a, bp_, 0, 1, s.bottleneck, st.h1_w.data()};
                product(&t, 1, st.h1_b.data(), sp_, acc_.data(), sp_, acc_.data(), sp_, n);
            } else {
                add_rows(acc_.data(), a, n, sp_, bp_);
            }

            // In place when h_cur is h_: product() reads each residual element just before writing it.
            float* dst = l + 1 < L ? h_.data() : residual_out_.data();
            if (s.layer1x1 && ls.gating == Gating::Blended && has(st, FilmKey::Layer1x1Post)) {
                // NAM Core applies layer1x1_post_film in blended layers only (its weights are always read).
                Term t{a, bp_, 0, 1, s.bottleneck, st.l1_w.data()};
                product(&t, 1, st.l1_b.data(), cp_, nullptr, 0, r_.data(), cp_, n);
                film(st, FilmKey::Layer1x1Post, r_.data(), cp_, cond, cond_stride, n);
                const long total = static_cast<long>(n) * cp_;
                for (long i = 0; i < total; ++i) dst[i] = h_cur[i] + r_[i];
            } else if (s.layer1x1) {
                Term t{a, bp_, 0, 1, s.bottleneck, st.l1_w.data()};
                product(&t, 1, st.l1_b.data(), cp_, h_cur, cp_, dst, cp_, n);
            } else if (dst != h_cur) {
                std::memcpy(dst, h_cur, sizeof(float) * static_cast<std::size_t>(n) * cp_);
            }
            if (l + 1 < L) feed(l + 1, dst, cond, cond_stride, n, settle);
        }
    }

    /// The head rechannel of n rows of the skip accumulator acc_ into head_out_.
    void head(int n, bool settle) noexcept {
        const ArraySpec& s = spec_;
        if (s.head_lookback() > 0) {
            push(head_history_, acc_.data(), ss_, n, settle);
            Term t{head_history_.window(n), ss_, s.head_dilation * ss_, s.head_kernel, s.skip_width(), head_w_.data()};
            product(&t, 1, head_b_.data(), hp_, nullptr, 0, head_out_.data(), hp_, n);
        } else {
            Term t{acc_.data(), ss_, 0, 1, s.skip_width(), head_w_.data()};
            product(&t, 1, head_b_.data(), hp_, nullptr, 0, head_out_.data(), hp_, n);
        }
    }

    /// Whether the layers run fused (ungated, no head1x1, layer1x1 on, channels == bottleneck <= 16, no FiLM).
    bool fused() const noexcept { return fused_; }
    /// Whether they run fused two rows per register (at most 4 channels, AVX2 + FMA builds).
    bool narrow() const noexcept { return narrow_; }

    /// The head rechannel's output of the last process() call, row stride head_stride().
    const float* head_out() const noexcept { return head_out_.data(); }
    int head_stride() const noexcept { return hp_; }
    /// The last layer's residual stream (the next array's input), row stride residual_stride().
    const float* residual_out() const noexcept { return residual_out_.data(); }
    int residual_stride() const noexcept { return hs_; }

    std::size_t state_floats() const noexcept {
        std::size_t n = head_history_.floats();
        for (const auto& st : layers_) {
            n += st.history.floats();
            for (const History& c : st.columns) n += c.floats();
        }
        return n;
    }

private:
    /// One FiLM's 1x1 of the condition, packed to the layout of what it modulates (width `width`):
    /// the scale of channel o in column col(o), its shift in column width + col(o).
    struct FilmState {
        int width = 0;  // padded width of the modulated rows; the 1x1 has width (or 2 * width) columns
        bool shift = true;
        FloatVec w, b;
    };

    struct LayerState {
        int zp = 0;  // padded conv output width (two padded halves when gated or blended)
        FloatVec conv_w, conv_b, mix_w, l1_w, l1_b, h1_w, h1_b;
        std::array<FilmState, kFilmKeys> films;  // active ones have w filled
        History history;  // this layer's input (the residual stream), row stride cp_; FiLM_conv_pre of it when that is on
        std::array<History, 4> columns;  // narrow arrays: the same input, one history per channel (row stride 1)
        FloatVec narrow_w;  // narrow arrays: the layer's weights broadcast (broadcast_narrow)
        int narrow_b = 0, narrow_mix = 0, narrow_l1 = 0, narrow_l1b = 0;
    };

    /// Reads FiLM `key` of layer `ls` (weights, then bias) into `f`, packed for the rows it modulates.
    template <typename ZCol>
    void read_film(nam::WeightCursor& wc, FilmKey key, const LayerSpec& ls, ZCol zcol, FilmState& f) {
        const ArraySpec& s = spec_;
        const FilmSpec& fs = s.films[static_cast<int>(key)];
        const int d = s.film_dim(key, ls), rows = s.film_rows(key, ls);
        const bool on_z = key == FilmKey::ConvPost || key == FilmKey::InputMixinPost || key == FilmKey::ActivationPre;
        const int zp = ls.gating == Gating::None ? bp_ : 2 * bp_;
        f.width = on_z ? zp : padded(d);
        f.shift = fs.shift;
        const int width = f.width;
        auto col = [&](int o) { return on_z ? zcol(o) : o; };
        auto film_col = [&](int o) { return o < d ? col(o) : width + col(o - d); };
        const int np = fs.shift ? 2 * width : width;
        detail::read_conv(wc, rows, s.condition_size, 1, fs.groups, np, film_col, f.w);
        detail::read_bias(wc, rows, np, film_col, f.b);
    }

    static bool has(const LayerState& st, FilmKey key) noexcept { return !st.films[static_cast<int>(key)].w.empty(); }

    /// Whether the array's FiLMs allow the fused layer: none, or activation_pre_film alone with one group.
    static bool fused_films(const ArraySpec& s) noexcept {
        for (int k = 0; k < kFilmKeys; ++k)
            if (s.films[k].active && (static_cast<FilmKey>(k) != FilmKey::ActivationPre || s.films[k].groups != 1)) return false;
        return true;
    }

    /// Sets f's activation_pre_film fields from layer st (left off when the FiLM is off); `film`: its S; T rows.
    static void fused_film(const LayerState& st, float* film, detail::FusedLayer& f) noexcept {
        const FilmState& fs = st.films[static_cast<int>(FilmKey::ActivationPre)];
        if (fs.w.empty()) return;
        f.film_w = fs.w.data();
        f.film_b = fs.b.data();
        f.film_np = fs.shift ? 2 * fs.width : fs.width;
        f.film = film;
    }

    /// v = v * S(c) + T(c) over n rows of stride `stride` when layer st has FiLM `key` on.
    void film(const LayerState& st, FilmKey key, float* v, int stride, const float* cond, int cond_stride, int n) noexcept {
        const FilmState& f = st.films[static_cast<int>(key)];
        if (f.w.empty()) return;
        const int np = f.shift ? 2 * f.width : f.width;
        const Term t{cond, cond_stride, 0, 1, spec_.condition_size, f.w.data()};
        product(&t, 1, f.b.data(), np, nullptr, 0, film_.data(), np, n);
        for (int r = 0; r < n; ++r) {
            float* RTNT_RESTRICT vr = v + static_cast<long>(r) * stride;
            const float* RTNT_RESTRICT sr = film_.data() + static_cast<long>(r) * np;
            if (f.shift)
                for (int c = 0; c < f.width; ++c) vr[c] = madd(vr[c], sr[c], sr[f.width + c]);
            else
                for (int c = 0; c < f.width; ++c) vr[c] *= sr[c];
        }
    }

    /// z_ = conv(h) + bias + mixin(c), with FiLM_conv_post on the conv part and FiLM_input_mixin_pre/post
    /// on the mix-in part when those are on (then the two parts are computed apart and added).
    void conv_and_mixin(LayerState& st, const LayerSpec& ls, const float* cond, int cond_stride, int n) noexcept {
        const ArraySpec& s = spec_;
        const Term conv{st.history.window(n), cp_, ls.dilation * cp_, ls.kernel_size, s.channels, st.conv_w.data()};
        const bool apart = has(st, FilmKey::ConvPost) || has(st, FilmKey::InputMixinPre) || has(st, FilmKey::InputMixinPost);
        if (!apart) {
            const Term terms[2] = {conv, {cond, cond_stride, 0, 1, s.condition_size, st.mix_w.data()}};
            product(terms, 2, st.conv_b.data(), st.zp, nullptr, 0, z_.data(), st.zp, n);
            return;
        }
        product(&conv, 1, st.conv_b.data(), st.zp, nullptr, 0, z_.data(), st.zp, n);
        film(st, FilmKey::ConvPost, z_.data(), st.zp, cond, cond_stride, n);
        const float* mix_in = cond;
        int mix_stride = cond_stride;
        if (has(st, FilmKey::InputMixinPre)) {
            for (int t = 0; t < n; ++t)
                std::memcpy(cf_.data() + static_cast<long>(t) * kp_, cond + static_cast<long>(t) * cond_stride,
                            sizeof(float) * static_cast<std::size_t>(s.condition_size));
            film(st, FilmKey::InputMixinPre, cf_.data(), kp_, cond, cond_stride, n);
            mix_in = cf_.data();
            mix_stride = kp_;
        }
        const Term mix{mix_in, mix_stride, 0, 1, s.condition_size, st.mix_w.data()};
        product(&mix, 1, zero_bias_.data(), st.zp, nullptr, 0, m_.data(), st.zp, n);
        film(st, FilmKey::InputMixinPost, m_.data(), st.zp, cond, cond_stride, n);
        add_rows(z_.data(), m_.data(), n, st.zp, st.zp);
    }

    /// Pushes n rows of layer l's input (stride cp_) into its history, through FiLM_conv_pre when on.
    void feed(std::size_t l, const float* rows, const float* cond, int cond_stride, int n, bool settle) noexcept {
        LayerState& st = layers_[l];
        if (has(st, FilmKey::ConvPre)) {
            std::memcpy(hf_.data(), rows, sizeof(float) * static_cast<std::size_t>(n) * cp_);
            film(st, FilmKey::ConvPre, hf_.data(), cp_, cond, cond_stride, n);
            rows = hf_.data();
        }
        push(st.history, rows, cp_, n, settle);
    }

    /// Layer l in one pass of row tiles (detail::fused_tile): its output goes straight into the
    /// next layer's history, or into residual_out_ for the last layer.
    void fused_layer(std::size_t l, const float* cond, int cond_stride, int n, bool settle) noexcept {
        const bool last = l + 1 == layers_.size();
        History* next = last ? nullptr : &layers_[l + 1].history;
        fused_wide(l, cond, cond_stride, n);
        if (!next) return;
        if (settle) {
            std::memcpy(h_.data(), next->next_row(0), sizeof(float) * static_cast<std::size_t>(hs_));
            next->fill(h_.data());
        } else {
            next->commit(n);
        }
    }

    /// The layers of a narrow array over n samples, each channel in its own column (detail::narrow_layer):
    /// h_'s rechannel rows go into layer 0's column histories, the skip accumulator runs in columns_skip_
    /// (from skip_in's rows or zeros), and at the end acc_ and residual_out_ get their rows back (stride 4).
    void narrow_layers(const float* cond, int cond_stride, const float* skip_in, int skip_stride, int n, bool settle) noexcept {
        if (n == 1 && !settle) return narrow_one(cond[0], skip_in);
        const int C = spec_.channels;
        const long col = static_cast<long>(columns_cond_.size());  // one column's capacity
        float* out = columns_out_.data();  // first layer 0's input (pushed to its histories), then each layer's output
        float* skip = columns_skip_.data();
        for (int t = 0; t < n; ++t) {
            columns_cond_[static_cast<std::size_t>(t)] = cond[static_cast<long>(t) * cond_stride];
            for (int c = 0; c < C; ++c) {
                out[c * col + t] = h_[static_cast<std::size_t>(t) * cp_ + c];
                skip[c * col + t] = skip_in ? skip_in[static_cast<long>(t) * skip_stride + c] : 0.0f;
            }
        }
        std::fill_n(columns_cond_.begin() + n, detail::kColumnSlack, 0.0f);  // what a last tile reads past n
        push_columns(layers_[0], out, n, settle);
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            LayerState& st = layers_[l];
            const LayerSpec& ls = spec_.layers[l];
            detail::NarrowLayer f{{}, ls.dilation, ls.kernel_size, columns_cond_.data(), st.narrow_w.data(),
                                  st.narrow_w.data() + st.narrow_b, st.narrow_w.data() + st.narrow_mix,
                                  st.narrow_w.data() + st.narrow_l1, st.narrow_w.data() + st.narrow_l1b, &ls.activation,
                                  {}, {}, columns_scratch_.data()};
            for (int c = 0; c < C; ++c) {
                f.window[c] = st.columns[c].window(n);
                f.skip[c] = skip + c * col;
                f.out[c] = out + c * col;
            }
            detail::narrow_layer(f, C, n);
            if (l + 1 < layers_.size()) push_columns(layers_[l + 1], out, n, settle);
        }
        std::fill(acc_.begin(), acc_.begin() + static_cast<long>(n) * ss_, 0.0f);
        std::fill(residual_out_.begin(), residual_out_.begin() + static_cast<long>(n) * hs_, 0.0f);
        for (int t = 0; t < n; ++t)
            for (int c = 0; c < C; ++c) {
                acc_[static_cast<std::size_t>(t) * ss_ + c] = skip[c * col + t];
                residual_out_[static_cast<std::size_t>(t) * hs_ + c] = out[c * col + t];
            }
    }

    /// One sample through a narrow array's layers (the arithmetic of narrow_layers, bit for bit): first the past
    /// taps of every layer (detail::narrow_past_all: independent chains, interleaved), then the rest layer by
    /// layer in registers (detail::narrow_rest), each layer's output appended to the next layer's column histories.
    void narrow_one(float cond, const float* skip_in) noexcept {
        switch (spec_.channels) {
            case 1: narrow_one_of<1>(cond, skip_in); break;
            case 2: narrow_one_of<2>(cond, skip_in); break;
            case 3: narrow_one_of<3>(cond, skip_in); break;
            default: narrow_one_of<4>(cond, skip_in); break;
        }
    }

    template <int C>
    void narrow_one_of(float cond, const float* skip_in) noexcept {
#if defined(__AVX2__) && defined(__FMA__)
        const std::size_t L = layers_.size();
        alignas(16) float x[4] = {}, skip[4] = {};
        for (int c = 0; c < C; ++c) {
            x[c] = h_[static_cast<std::size_t>(c)];
            layers_[0].columns[c].store_one(x[c]);
            if (skip_in) skip[c] = skip_in[c];
        }
        for (std::size_t l = 0; l < L; ++l)
            for (int c = 0; c < C; ++c) samples_[l].window[c] = layers_[l].columns[c].window(l == 0 ? 1 : 0);
        detail::narrow_past_all(samples_.data(), static_cast<int>(L), pre_.data());
        __m128 xv = _mm_load_ps(x), sk = _mm_load_ps(skip);
        for (std::size_t l = 0; l < L; ++l) {
            detail::narrow_rest<C>(samples_[l], pre_.data() + 4 * l, xv, cond, sk);
            if (l + 1 == L) break;
            _mm_store_ps(x, xv);
            for (int c = 0; c < C; ++c) layers_[l + 1].columns[c].store_one(x[c]);
        }
        _mm_store_ps(x, xv);
        _mm_store_ps(skip, sk);
        std::fill(acc_.begin(), acc_.begin() + ss_, 0.0f);
        std::fill(residual_out_.begin(), residual_out_.begin() + hs_, 0.0f);
        std::copy(skip, skip + C, acc_.begin());
        std::copy(x, x + C, residual_out_.begin());
#else
        (void)cond, (void)skip_in;
#endif
    }

    /// Appends n samples of every channel (columns of `src`, one column capacity apart) to a layer's
    /// column histories; with `settle`, fills them with sample 0 instead.
    void push_columns(LayerState& st, const float* src, int n, bool settle) noexcept {
        const long col = static_cast<long>(columns_cond_.size());
        for (int c = 0; c < spec_.channels; ++c) push(st.columns[c], src + c * col, 1, n, settle);
    }

    /// The narrow kernel's weights of layer st (kernel size K), every value broadcast to 8 floats:
    /// conv [(k*C + i)*C + o], then bias, mix-in, layer1x1 [i*C + o] and its bias (offsets in st).
    void broadcast_narrow(LayerState& st, int K) {
        const int C = spec_.channels;
        std::vector<float> v;
        for (int k = 0; k < K; ++k)
            for (int i = 0; i < C; ++i)
                for (int o = 0; o < C; ++o) v.push_back(st.conv_w[(static_cast<std::size_t>(k) * C + i) * st.zp + o]);
        st.narrow_b = static_cast<int>(v.size()) * 8;
        for (int o = 0; o < C; ++o) v.push_back(st.conv_b[o]);
        st.narrow_mix = static_cast<int>(v.size()) * 8;
        for (int o = 0; o < C; ++o) v.push_back(st.mix_w[o]);
        st.narrow_l1 = static_cast<int>(v.size()) * 8;
        for (int i = 0; i < C; ++i)
            for (int o = 0; o < C; ++o) v.push_back(st.l1_w[static_cast<std::size_t>(i) * cp_ + o]);
        st.narrow_l1b = static_cast<int>(v.size()) * 8;
        for (int o = 0; o < C; ++o) v.push_back(st.l1_b[o]);
        st.narrow_w.assign(v.size() * 8, 0.0f);
        for (std::size_t j = 0; j < v.size(); ++j) std::fill_n(st.narrow_w.begin() + static_cast<long>(j) * 8, 8, v[j]);
    }

    /// Layer l over n rows: its FusedLayer from prepare() with this piece's window and condition, and
    /// the FiLM rows of one tile at the start of fused_film_.
    void fused_wide(std::size_t l, const float* cond, int cond_stride, int n) noexcept {
        detail::FusedLayer f = rows_[l];
        f.window = layers_[l].history.window(n);
        f.cond = cond;
        f.cond_stride = cond_stride;
        if (f.film_w) f.film = fused_film_.data();
        if (bp_ == 8) detail::fused_rows<detail::fused_rows_per_tile<1>(), 1>(f, 0, n);
        else detail::fused_rows<detail::fused_rows_per_tile<2>(), 2>(f, 0, n);
    }

    /// Layer l's FusedLayer, built once in prepare(): the window and condition are set per row by
    /// fused_one and per piece by fused_wide (its FiLM rows here: row l of fused_film_, fused_one's).
    detail::FusedLayer fused_row(std::size_t l) noexcept {
        LayerState& st = layers_[l];
        const LayerSpec& ls = spec_.layers[l];
        History* next = l + 1 == layers_.size() ? nullptr : &layers_[l + 1].history;
        detail::FusedLayer f{nullptr, ls.dilation, ls.kernel_size, spec_.channels, nullptr, 0, spec_.condition_size,
                             st.conv_w.data(), st.conv_b.data(), st.mix_w.data(), st.l1_w.data(), st.l1_b.data(),
                             &ls.activation, acc_.data(), a_.data(), pre_.data(), next, residual_out_.data()};
        fused_film(st, fused_film_.data() + l * 2 * bp_, f);
        return f;
    }

    /// One row through the fused layers (the wide ones: padded width 8 or 16): first the past
    /// part and FiLM rows of every layer (detail::fused_past_all, chains of several layers interleaved), then the
    /// latency-bound rest layer by layer. Layer l's window starts at the same row before and after
    /// its current row is committed: window(0) before (layers l > 0 here), window(1) after.
    template <int NC>
    void fused_one(const float* cond) noexcept {
        const std::size_t L = layers_.size();
        const long S = NC * 8;
        for (std::size_t l = 0; l < L; ++l) {  // the rows are built in prepare(): no struct copies per sample
            rows_[l].window = layers_[l].history.window(l == 0 ? 1 : 0);
            rows_[l].cond = cond;
        }
        detail::fused_past_all<detail::past_layers<NC>(), NC>(rows_.data(), static_cast<int>(L), pre_.data());
        for (std::size_t l = 0; l < L; ++l) {
            detail::fused_rest_row<NC>(rows_[l], pre_.data() + l * S);
            if (l + 1 < L) layers_[l + 1].history.commit(1);
        }
    }

    /// process() for one row of a wide fused array: the same arithmetic, bit for bit, with the head
    /// conv's past taps (product()'s chain up to the current tap) also computed before the layers.
    void process_one(const float* in, int in_stride, const float* cond, const float* skip_in) noexcept {
        const ArraySpec& s = spec_;
        const Term rechannel{in, in_stride, 0, 1, s.input_size, rechannel_w_.data()};
        History& h0 = layers_[0].history;
        detail::product_one(&rechannel, 1, zero_bias_.data(), cp_, nullptr, h0.next_row(0), h0.next_row(0) + h0.mirror());
        h0.commit(1);
        if (skip_in) std::memcpy(acc_.data(), skip_in, sizeof(float) * static_cast<std::size_t>(ss_));
        else std::fill(acc_.begin(), acc_.begin() + ss_, 0.0f);
        const bool head_taps = s.head_lookback() > 0;
        if (head_taps) head_past_one();
        if (bp_ == 8) fused_one<1>(cond);
        else fused_one<2>(cond);
        if (head_taps) head_current_one();
        else head(1, false);
    }

    /// head() for one row in two halves, so process_one computes the first before the layers: head_out_ row 0 =
    /// the head conv's bias and past taps (product()'s chain up to the current tap); head_current_one then stores
    /// the skip row and finishes the chain with the current tap.
    void head_past_one() noexcept {
        const ArraySpec& s = spec_;
        const Term t{head_history_.window(0), ss_, s.head_dilation * ss_, s.head_kernel - 1, s.skip_width(), head_w_.data()};
        detail::product_one(&t, 1, head_b_.data(), hp_, nullptr, head_out_.data());
    }
    void head_current_one() noexcept {
        const ArraySpec& s = spec_;
        head_history_.store(acc_.data(), ss_, 1);
        const long w0 = static_cast<long>(s.head_kernel - 1) * s.skip_width() * hp_;
        const Term t{head_history_.newest(1), ss_, 0, 1, s.skip_width(), head_w_.data() + w0};
        detail::product_one(&t, 1, head_out_.data(), hp_, nullptr, head_out_.data());
    }

    static void push(History& h, const float* rows, int stride, int n, bool settle) noexcept {
        if (settle) h.fill(rows);
        else h.store(rows, stride, n);
    }

    static void add_rows(float* RTNT_RESTRICT acc, const float* RTNT_RESTRICT a, int n, int acc_stride, int a_stride) noexcept {
        if (acc_stride == a_stride) {
            const long total = static_cast<long>(n) * acc_stride;
            for (long i = 0; i < total; ++i) acc[i] += a[i];
            return;
        }
        for (int t = 0; t < n; ++t)
            for (int c = 0; c < acc_stride; ++c) acc[static_cast<long>(t) * acc_stride + c] += a[static_cast<long>(t) * a_stride + c];
    }

    /// The activation output of the conv rows in z_ (width zp): z_ itself, rows stride bp_, for an
    /// ungated layer; a_ for gated and blended layers.
    float* activate(const LayerSpec& ls, int zp, int n) noexcept {
        float* z = z_.data();
        if (ls.gating == Gating::None) {
            ls.activation.apply(z, n, bp_, bp_);
            return z;
        }
        float* RTNT_RESTRICT a = a_.data();
        if (ls.gating == Gating::Gated) {
            ls.activation.apply(z, n, bp_, zp);
            ls.secondary.apply(z + bp_, n, bp_, zp);
            for (int t = 0; t < n; ++t) {
                const float* RTNT_RESTRICT zt = z + static_cast<long>(t) * zp;
                float* RTNT_RESTRICT at = a + static_cast<long>(t) * bp_;
                for (int c = 0; c < bp_; ++c) at[c] = zt[c] * zt[bp_ + c];
            }
        } else {
            for (int t = 0; t < n; ++t) std::memcpy(a + static_cast<long>(t) * bp_, z + static_cast<long>(t) * zp, sizeof(float) * bp_);
            ls.activation.apply(z, n, bp_, zp);
            ls.secondary.apply(z + bp_, n, bp_, zp);
            for (int t = 0; t < n; ++t) {
                const float* RTNT_RESTRICT zt = z + static_cast<long>(t) * zp;
                float* RTNT_RESTRICT at = a + static_cast<long>(t) * bp_;
                for (int c = 0; c < bp_; ++c) at[c] = madd(zt[bp_ + c], zt[c], (1.0f - zt[bp_ + c]) * at[c]);
            }
        }
        return a;
    }

    ArraySpec spec_;
    int cp_, bp_, sp_, hp_, kp_ = 8;  // padded channels, bottleneck, skip, head and condition widths
    bool fused_ = false, narrow_ = false;
    int hs_ = 0, ss_ = 0;  // row strides of the residual stream (histories, residual_out_) and of the skip rows
    FloatVec rechannel_w_, zero_bias_, head_w_, head_b_;
    std::vector<LayerState> layers_;
    History head_history_;
    FloatVec z_, a_, h_, residual_out_, acc_, head_out_;
    FloatVec film_, m_, cf_, hf_, r_;  // FiLM scratch: [S; T] rows, mix-in part, FiLM'd condition and input, 1x1 output
    FloatVec pre_;  // the past part of each layer (fused_one), or of one tile's rows (fused_tile)
    FloatVec fused_film_;  // activation_pre_film's [S; T] rows of each layer (fused_one) or of one tile's rows
    FloatVec columns_out_, columns_skip_, columns_cond_, columns_scratch_;  // narrow arrays: one column per channel
    std::vector<detail::NarrowSample> samples_;  // narrow arrays: each layer's single-sample view (narrow_one)
    std::vector<detail::FusedLayer> rows_;  // the wide fused layers (fused_row), for fused_one and fused_wide
};

}  // namespace wavenet
}  // namespace rtnt
