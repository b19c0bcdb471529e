// The shape of a NAM WaveNet (layer arrays of dilated-conv layers) as its config describes it, and
// the number of weights that shape consumes.
#pragma once

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
    std::vector<LayerSpec> layers;

    /// Rows of the dilated conv's output: 2 * bottleneck when the layer is gated or blended.
    int conv_out(const LayerSpec& l) const noexcept { return l.gating == Gating::None ? bottleneck : 2 * bottleneck; }
    /// Width of each layer's skip output (what the head accumulator sums).
    int skip_width() const noexcept { return head1x1 ? head1x1_out : bottleneck; }
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
