// The shape of a NAM WaveNet (layer arrays of dilated-conv layers) as its config describes it, and
// the number of weights that shape consumes.
#pragma once

#include <array>
#include <vector>

#include "activation.hpp"

namespace rtnt {
namespace wavenet {

enum class Gating { None, Gated, Blended };

/// One layer: a dilated conv, the input mix-in, the activation (gated or blended by a secondary
/// activation), the skip output and the residual update.
struct LayerSpec {
    int kernel_size = 1;
    int dilation = 1;
    Activation activation;
    Gating gating = Gating::None;
    Activation secondary;  // the gate of a gated or blended layer
};

/// NAM's FiLM positions in a layer, in the order their weights follow a layer's other weights
/// (FORMAT.md section 4). FiLM(v, c) = v * S(c) + T(c), [S; T] a 1x1 conv (with bias) of the condition.
enum class FilmKey { ConvPre, ConvPost, InputMixinPre, InputMixinPost, ActivationPre, ActivationPost, Layer1x1Post, Head1x1Post };
constexpr int kFilmKeys = 8;
/// The config key of each FilmKey.
constexpr const char* kFilmNames[kFilmKeys] = {"conv_pre_film",       "conv_post_film",       "input_mixin_pre_film",
                                               "input_mixin_post_film", "activation_pre_film", "activation_post_film",
                                               "layer1x1_post_film",  "head1x1_post_film"};

/// One FiLM switch: off, or on with its shift rows (T) or without (scale only) and its groups.
struct FilmSpec {
    bool active = false;
    bool shift = true;
    int groups = 1;
};

/// One layer array: rechannel, layers, head rechannel.
struct ArraySpec {
    int input_size = 1;
    int condition_size = 1;
    int channels = 1;
    int bottleneck = 1;
    int groups_input = 1;
    int groups_mixin = 1;
    bool layer1x1 = true;
    int layer1x1_groups = 1;
    bool head1x1 = false;
    int head1x1_out = 0;
    int head1x1_groups = 1;
    int head_out = 1;  // the head rechannel's output channels ("head_size")
    int head_kernel = 1;
    int head_dilation = 1;
    bool head_bias = false;
    std::array<FilmSpec, kFilmKeys> films{};  // the same in every layer of the array
    std::vector<LayerSpec> layers;

    /// Rows of the dilated conv's output: 2 * bottleneck when the layer is gated or blended.
    int conv_out(const LayerSpec& l) const noexcept { return l.gating == Gating::None ? bottleneck : 2 * bottleneck; }
    /// Width of each layer's skip output (what the head accumulator sums).
    int skip_width() const noexcept { return head1x1 ? head1x1_out : bottleneck; }
    bool any_film() const noexcept {
        for (const FilmSpec& f : films)
            if (f.active) return true;
        return false;
    }
    /// D of a FiLM: the width of what it modulates (FORMAT.md section 4).
    int film_dim(FilmKey k, const LayerSpec& l) const noexcept {
        switch (k) {
            case FilmKey::ConvPre: return channels;
            case FilmKey::InputMixinPre: return condition_size;
            case FilmKey::ActivationPost: return bottleneck;
            case FilmKey::Layer1x1Post: return channels;
            case FilmKey::Head1x1Post: return skip_width();
            default: return conv_out(l);  // conv_post, input_mixin_post, activation_pre
        }
    }
    /// Output rows of a FiLM's 1x1: D, or 2D with the shift.
    int film_rows(FilmKey k, const LayerSpec& l) const noexcept {
        return (films[static_cast<int>(k)].shift ? 2 : 1) * film_dim(k, l);
    }
    /// Weights (1x1 and bias) of layer l's active FiLMs.
    long film_weights(const LayerSpec& l) const noexcept {
        long n = 0;
        for (int k = 0; k < kFilmKeys; ++k)
            if (films[k].active) {
                const long rows = film_rows(static_cast<FilmKey>(k), l);
                n += rows * (condition_size / films[k].groups) + rows;
            }
        return n;
    }

    long head_lookback() const noexcept { return long(head_kernel - 1) * head_dilation; }

    long lookback() const noexcept {
        long r = head_lookback();
        for (const auto& l : layers) r += long(l.kernel_size - 1) * l.dilation;
        return r;
    }

    /// Weights this array consumes, in NAM Core's order (FORMAT.md section 4).
    long weight_count() const noexcept {
        long n = long(input_size) * channels;  // rechannel, no bias
        for (const auto& l : layers) {
            const long z = conv_out(l);
            n += z * (channels / groups_input) * l.kernel_size + z;  // dilated conv and its bias
            n += z * (condition_size / groups_mixin);               // input mix-in, no bias
            if (layer1x1) n += long(channels) * (bottleneck / layer1x1_groups) + channels;
            if (head1x1) n += long(head1x1_out) * (bottleneck / head1x1_groups) + head1x1_out;
            n += film_weights(l);
        }
        n += long(head_out) * skip_width() * head_kernel + (head_bias ? head_out : 0);
        return n;
    }

    double macs_per_sample() const noexcept {
        double m = double(input_size) * channels + double(head_out) * skip_width() * head_kernel;
        for (const auto& l : layers) {
            const double z = conv_out(l);
            m += z * (channels / groups_input) * l.kernel_size + z * (condition_size / groups_mixin);
            if (layer1x1) m += double(channels) * (bottleneck / layer1x1_groups);
            if (head1x1) m += double(head1x1_out) * (bottleneck / head1x1_groups);
            for (int k = 0; k < kFilmKeys; ++k)
                if (films[k].active) m += double(film_rows(static_cast<FilmKey>(k), l)) * (condition_size / films[k].groups);
        }
        return m;
    }
};

struct WaveNetSpec {
    std::vector<ArraySpec> arrays;

    /// All arrays' weights plus the final head_scale.
    long weight_count() const noexcept {
        long n = 1;
        for (const auto& a : arrays) n += a.weight_count();
        return n;
    }

    long lookback() const noexcept {
        long r = 0;
        for (const auto& a : arrays) r += a.lookback();
        return r;
    }
};

}  // namespace wavenet
}  // namespace rtnt
