// A streaming sequential model: prepare(max_block), reset(), process(in, out, n) for any n.
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../core/aligned.hpp"
#include "../core/denormals.hpp"
#include "../core/layer.hpp"

namespace rtnt {

/// One control (knob) of a conditioned model: model input channel 1 + its index. The range is the
/// lowest and highest training value, the default the middle one (RTNeural JSON's 'controls' key).
struct ControlSpec {
    std::string name;
    double minimum = 0.0;
    double maximum = 1.0;
    double default_value = 0.0;  // fed as float32 when no control values are given
};

/// What a loader knows about a model beyond its layers.
struct ModelInfo {
    /// Samples of silence reset() runs through the model before real audio (NAM Core's prewarm);
    /// 0 for RTNeural JSON, whose reset() zeroes the state.
    long prewarm_samples = 0;
    /// The sample rate the file declares, or -1 where it declares none.
    double sample_rate = -1.0;
    /// One line naming the format and architecture, e.g. "NAM 0.5.0 WaveNet: 2 arrays, 20 layers".
    std::string description;
    /// The K controls of a conditioned model, in input-channel order; empty for an unconditioned one.
    std::vector<ControlSpec> controls;
    /// How the runtime runs a NAM WaveNet, for tests and benchmark reports: one word per layer array,
    /// "narrow", "fused" or "generic" (wavenet/layer_array.hpp, LayerArray::kernel); empty for other models.
    std::string kernels;
};

/// A block runs through the layers in pieces of at most kPieceFrames frames: each piece goes
/// through every layer before the next starts, and activations ping-pong between two scratch
/// buffers of one piece. Pieces keep the working set in L1/L2 whatever the host's block size: the
/// scratch buffers stay small, and every conv history ring holds its look-back plus one piece, so
/// the row a block overwrites is one the previous piece has just read (a ring sized by the host's
/// max block halves the speed at block 1). After prepare(), process() and reset() allocate
/// nothing, take no lock and make no system call. Instances share no state, so one per channel is
/// safe.
///
/// A conditioned model (K = info().controls.size() > 0) has in_size() == 1 + K: each frame is the
/// audio sample followed by the K control values at that sample. process(in, out, n, controls)
/// builds those frames piece by piece in a buffer sized by prepare(), so control values may change
/// at every sample, between and within blocks, without allocation.
class Model {
public:
    static constexpr int kDefaultMaxBlock = 256;
    static constexpr int kMaxBlockLimit = 1 << 16;
    /// Frames per pass through the layers; measured in docs/benchmarks/native.md.
    static constexpr int kPieceFrames = 64;

    /// Takes ownership of a non-empty chain of layers whose sizes match (the loader checks this),
    /// and prepares for blocks of kDefaultMaxBlock.
    Model(int in_size, std::vector<std::unique_ptr<Layer>> layers, ModelInfo info = {})
        : in_size_(in_size), layers_(std::move(layers)), info_(std::move(info)), bypassed_(layers_.size(), 0) {
        if (layers_.empty()) throw std::invalid_argument("a model needs at least one layer");
        if (info_.prewarm_samples < 0) throw std::invalid_argument("prewarm_samples must be >= 0");
        if (!info_.controls.empty() && in_size_ != 1 + num_controls())
            throw std::invalid_argument("a model with K controls needs in_size 1 + K");
        defaults_.assign(info_.controls.size(), 0.0f);
        for (std::size_t j = 0; j < info_.controls.size(); ++j) defaults_[j] = static_cast<float>(info_.controls[j].default_value);
        prepare(kDefaultMaxBlock);
    }

    Model(Model&&) noexcept = default;
    Model& operator=(Model&&) noexcept = default;
    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

    int in_size() const noexcept { return in_size_; }
    /// K, the number of controls (0 for an unconditioned model).
    int num_controls() const noexcept { return static_cast<int>(info_.controls.size()); }
    int out_size() const noexcept { return layers_.back()->out_size(); }
    int max_block() const noexcept { return max_block_; }
    std::size_t num_layers() const noexcept { return layers_.size(); }
    const Layer& layer(std::size_t i) const { return *layers_.at(i); }
    const ModelInfo& info() const noexcept { return info_; }
    void set_description(std::string description) { info_.description = std::move(description); }

    /// This model with `stage` (a layer whose in_size is this model's out_size) appended after its layers, the
    /// info kept but the description; reset() then prewarms the whole chain, stage included. Consumes the model.
    Model followed_by(std::unique_ptr<Layer> stage, std::string description) && {
        if (!stage || stage->in_size() != out_size()) throw std::invalid_argument("the stage must take the model's output");
        std::vector<std::unique_ptr<Layer>> layers = std::move(layers_);
        layers.push_back(std::move(stage));
        ModelInfo info = std::move(info_);
        info.description = std::move(description);
        return Model(in_size_, std::move(layers), std::move(info));
    }

    /// Multiply-accumulates per sample over all layers.
    double macs_per_sample() const noexcept {
        double m = 0.0;
        for (const auto& l : layers_) m += l->macs_per_sample();
        return m;
    }

    /// Receptive field in samples: 1 + the sum of every layer's look-back.
    long receptive_field() const noexcept {
        long r = 1;
        for (const auto& l : layers_) r += l->lookback();
        return r;
    }

    /// Bypasses layer i (its output becomes its input) or restores it; only a layer whose input and
    /// output sizes match can be bypassed (returns false otherwise). A bypassed layer keeps running, so
    /// its state follows the signal and restoring it has no stale history; bypass takes effect at the
    /// next process() call, without a crossfade. Allocates nothing.
    bool set_bypassed(std::size_t i, bool on) noexcept {
        if (i >= layers_.size() || layers_[i]->in_size() != layers_[i]->out_size()) return false;
        bypassed_[i] = on ? 1 : 0;
        return true;
    }
    bool bypassed(std::size_t i) const noexcept { return i < bypassed_.size() && bypassed_[i] != 0; }

    /// Whether reset() prewarms (NAM Core's SetPrewarmOnReset; on by default, and without effect
    /// when info().prewarm_samples is 0). Off, reset() leaves zeroed histories and the initial
    /// recurrent state. Takes effect at the next reset() or prepare().
    void set_prewarm_on_reset(bool on) noexcept { prewarm_on_reset_ = on; }
    bool prewarm_on_reset() const noexcept { return prewarm_on_reset_; }

    /// Allocates for blocks of up to max_block samples and resets the state.
    void prepare(int max_block) {
        if (max_block < 1 || max_block > kMaxBlockLimit)
            throw std::invalid_argument("max_block must be in [1, " + std::to_string(kMaxBlockLimit) + "]");
        const int piece = std::min(max_block, kPieceFrames);
        int widest = 0;
        for (auto& l : layers_) {
            l->prepare(piece);
            widest = std::max(widest, padded(l->out_size()));
        }
        ping_.assign(static_cast<std::size_t>(piece) * widest, 0.0f);
        pong_.assign(static_cast<std::size_t>(piece) * widest, 0.0f);
        silence_.assign(info_.prewarm_samples > 0 ? static_cast<std::size_t>(piece) * in_size_ : 0, 0.0f);
        discard_.assign(info_.prewarm_samples > 0 ? static_cast<std::size_t>(piece) * out_size() : 0, 0.0f);
        frames_.assign(num_controls() > 0 ? static_cast<std::size_t>(piece) * in_size_ : 0, 0.0f);
        max_block_ = max_block;
        piece_ = piece;
        reset();
    }

    /// Restarts the signal: zeroes the state (or restores the stored initial state) and then, if
    /// prewarm is on, brings it to the steady response to silence as NAM Core's Reset() does. A
    /// feed-forward model settles directly (its cost is about one sample); others run
    /// info().prewarm_samples samples of silence, whatever max_block is.
    void reset() noexcept {
        for (auto& l : layers_) l->reset();
        if (!prewarm_on_reset_ || info_.prewarm_samples == 0) return;
        DenormalGuard ftz;
        if (layers_.size() == 1 && layers_[0]->settle()) return;
        for (long done = 0; done < info_.prewarm_samples;) {
            const int m = static_cast<int>(std::min<long>(piece_, info_.prewarm_samples - done));
            run_piece(silence_.data(), discard_.data(), m);
            done += m;
        }
    }

    /// Processes n frames: in holds n * in_size() floats, out receives n * out_size() floats
    /// (frames interleaved). Any n is accepted; the result does not depend on how a signal is cut.
    void process(const float* in, float* out, int n) noexcept {
        DenormalGuard ftz;
        const int os = out_size();
        for (int done = 0; done < n;) {
            const int m = std::min(piece_, n - done);
            run_piece(in + static_cast<long>(done) * in_size_, out + static_cast<long>(done) * os, m);
            done += m;
        }
    }

    /// Processes n samples of a conditioned model: in holds n audio samples, controls n * K floats
    /// (row-major, row t the K control values at sample t), out receives n * out_size() floats.
    /// controls == nullptr holds every control at its default. For K = 0 this is process(in, out, n)
    /// and controls is not read. Any n is accepted; the result does not depend on how a signal is cut.
    void process(const float* in, float* out, int n, const float* controls) noexcept {
        const int k = num_controls();
        if (k == 0) {
            process(in, out, n);
            return;
        }
        DenormalGuard ftz;
        const int os = out_size();
        float* frames = frames_.data();
        for (int done = 0; done < n;) {
            const int m = std::min(piece_, n - done);
            for (int t = 0; t < m; ++t) {
                float* frame = frames + static_cast<long>(t) * in_size_;
                const float* c = controls ? controls + static_cast<long>(done + t) * k : defaults_.data();
                frame[0] = in[done + t];
                for (int j = 0; j < k; ++j) frame[1 + j] = c[j];
            }
            run_piece(frames, out + static_cast<long>(done) * os, m);
            done += m;
        }
    }

private:
    /// m <= piece_ frames through every layer.
    void run_piece(const float* in, float* out, int m) noexcept {
        const int os = out_size();
        const float* cur = in;
        int stride = in_size_;
        float* bufs[2] = {ping_.data(), pong_.data()};
        int which = 0;
        for (std::size_t i = 0; i < layers_.size(); ++i) {
            Layer& l = *layers_[i];
            float* dst = bufs[which];
            if (l.takes_controls())  // a gray-box controller reads the frame's control channels 1..K
                l.process_controlled(cur, stride, in + 1, in_size_, dst, m);
            else
                l.process(cur, stride, dst, m);
            if (bypassed_[i]) copy_rows(cur, stride, dst, padded(l.out_size()), l.out_size(), m);
            cur = dst;
            stride = padded(l.out_size());
            which ^= 1;
        }
        if (os == stride) {
            std::memcpy(out, cur, sizeof(float) * static_cast<std::size_t>(m) * os);
        } else {
            for (int t = 0; t < m; ++t)
                for (int c = 0; c < os; ++c) out[static_cast<long>(t) * os + c] = cur[static_cast<long>(t) * stride + c];
        }
    }

    /// Row t of `src` (stride s) into row t of `dst` (stride d, padding lanes zeroed), m rows of c channels.
    static void copy_rows(const float* src, int s, float* dst, int d, int c, int m) noexcept {
        for (int t = 0; t < m; ++t) {
            float* row = dst + static_cast<long>(t) * d;
            for (int k = 0; k < d; ++k) row[k] = k < c ? src[static_cast<long>(t) * s + k] : 0.0f;
        }
    }

    int in_size_;
    std::vector<std::unique_ptr<Layer>> layers_;
    ModelInfo info_;
    std::vector<char> bypassed_;
    bool prewarm_on_reset_ = true;
    int max_block_ = 0;
    int piece_ = 0;
    FloatVec ping_, pong_, silence_, discard_, frames_;
    std::vector<float> defaults_;
};

}  // namespace rtnt
