// The block-processing interface shared by every layer type.
#pragma once

namespace rtnt {

/// One layer of a streaming model. Activations are time-major blocks: row t of a block holds the
/// channels of sample t. Outputs are written with row stride padded(out_size()).
class Layer {
public:
    Layer(int in_size, int out_size) noexcept : in_size_(in_size), out_size_(out_size) {}
    virtual ~Layer() = default;
    Layer(const Layer&) = delete;
    Layer& operator=(const Layer&) = delete;

    int in_size() const noexcept { return in_size_; }
    int out_size() const noexcept { return out_size_; }

    /// Allocates every buffer that process() needs for blocks of up to max_block samples.
    virtual void prepare(int max_block) { (void)max_block; }
    /// Clears the streaming state (history, recurrent state) to zeros, or to the layer's stored
    /// initial state where it has one (a NAM LSTM's h0 and c0).
    virtual void reset() noexcept {}
    /// Sets the state to the steady response to a silent model input held forever, when the layer
    /// can compute it directly (a feed-forward network with finite memory reads the model input;
    /// this is NAM Core's prewarm without running the samples). Returns false if it cannot.
    virtual bool settle() noexcept { return false; }
    /// Processes n <= max_block samples: in has row stride in_stride, out has stride padded(out_size()).
    virtual void process(const float* in, int in_stride, float* out, int n) noexcept = 0;
    /// Whether the layer reads the model's control values (a gray-box layer with knob controllers).
    virtual bool takes_controls() const noexcept { return false; }
    /// As process(), with the K control values of sample t at controls + t * controls_stride.
    virtual void process_controlled(const float* in, int in_stride, const float* controls, int controls_stride,
                                    float* out, int n) noexcept {
        (void)controls;
        (void)controls_stride;
        process(in, in_stride, out, n);
    }
    /// Multiply-accumulates per sample (the layer's nominal arithmetic, excluding padding).
    virtual double macs_per_sample() const noexcept { return 0.0; }
    /// Past samples this layer looks back over (its contribution to the receptive field).
    virtual int lookback() const noexcept { return 0; }

private:
    int in_size_;
    int out_size_;
};

/// A per-sample transform a layer applies to its n output rows (row stride `stride`, `channels` channels) right
/// before its activation: FiLM's gamma * z + beta (film/film.hpp). Allocates nothing.
class Epilogue {
public:
    virtual ~Epilogue() = default;
    virtual void apply(float* out, int stride, int channels, int n) const noexcept = 0;
};

/// Writes one mono sample as row t of a layer output (row stride `stride`), zeroing the row's padding lanes
/// as every layer does, so a following layer may read whole rows.
inline void store_mono(float* out, int stride, int t, float v) noexcept {
    float* row = out + static_cast<long>(t) * stride;
    row[0] = v;
    for (int c = 1; c < stride; ++c) row[c] = 0.0f;
}

}  // namespace rtnt
