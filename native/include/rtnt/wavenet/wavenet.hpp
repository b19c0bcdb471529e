// A NAM WaveNet as one streaming layer: mono out; mono in, or the audio and K knob values of a
// knob-conditioned file (config 'in_channels' 1 + K).
#pragma once

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/aligned.hpp"
#include "../core/layer.hpp"
#include "../nam/weights.hpp"
#include "layer_array.hpp"
#include "spec.hpp"

namespace rtnt {
namespace wavenet {

/// Runs the layer arrays in order on each piece: array 0 reads the model input as its layer input
/// and every array reads it as the condition; array i > 0 takes array i-1's residual stream and
/// starts its skip accumulator from array i-1's head output. The output is head_scale times the
/// last head output. reset() zeroes every history; settle() fills them with the response to the
/// rest frame held forever (NAM Core's prewarm, exactly as if that many rest frames had been
/// processed): silence, and for a conditioned file every knob at its default.
class WaveNet final : public rtnt::Layer {
public:
    /// weights: the whole flat list, whose size the loader has checked against spec.weight_count();
    /// rest_frame: one input frame (spec's input channels), {0} for a mono file.
    WaveNet(const WaveNetSpec& spec, const std::vector<float>& weights, std::vector<float> rest_frame = {0.0f})
        : Layer(spec.arrays.front().input_size, 1), rest_frame_(std::move(rest_frame)) {
        if (static_cast<int>(rest_frame_.size()) != in_size()) throw std::invalid_argument("the rest frame needs one value per input channel");
        nam::WeightCursor wc(weights);
        arrays_.reserve(spec.arrays.size());
        for (const ArraySpec& a : spec.arrays) arrays_.emplace_back(a, wc);
        head_scale_ = wc.next();
        lookback_ = static_cast<int>(spec.lookback());
        for (const ArraySpec& a : spec.arrays) macs_ += a.macs_per_sample();
    }

    void prepare(int max_block) override {
        for (auto& a : arrays_) a.prepare(max_block);
    }

    void reset() noexcept override {
        for (auto& a : arrays_) a.reset();
    }

    bool settle() noexcept override {
        float out[8];  // one row of padded(1) floats
        run(rest_frame_.data(), in_size(), out, 1, true);
        return true;
    }

    void process(const float* in, int in_stride, float* out, int n) noexcept override { run(in, in_stride, out, n, false); }

    double macs_per_sample() const noexcept override { return macs_; }
    int lookback() const noexcept override { return lookback_; }
    float head_scale() const noexcept { return head_scale_; }
    /// LayerArray::kernel() of each array, space-separated (e.g. "fused fused").
    std::string kernels() const {
        std::string k;
        for (const LayerArray& a : arrays_) k += (k.empty() ? "" : " ") + std::string(a.kernel());
        return k;
    }

private:
    void run(const float* in, int in_stride, float* out, int n, bool settle) noexcept {
        const float* layer_in = in;
        int layer_in_stride = in_stride;
        const float* skip = nullptr;
        int skip_stride = 0;
        for (auto& a : arrays_) {
            a.process(layer_in, layer_in_stride, in, in_stride, skip, skip_stride, n, settle);
            layer_in = a.residual_out();
            layer_in_stride = a.residual_stride();
            skip = a.head_out();
            skip_stride = a.head_stride();
        }
        const LayerArray& last = arrays_.back();
        const int hs = last.head_stride(), os = padded(out_size());
        for (int t = 0; t < n; ++t) out[static_cast<long>(t) * os] = head_scale_ * last.head_out()[static_cast<long>(t) * hs];
    }

    std::vector<LayerArray> arrays_;
    std::vector<float> rest_frame_;
    float head_scale_ = 1.0f;
    int lookback_ = 0;
    double macs_ = 0.0;
};

}  // namespace wavenet
}  // namespace rtnt
