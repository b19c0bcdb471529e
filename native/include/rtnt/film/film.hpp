// FiLM (feature-wise linear modulation, Perez et al. 2018) of a conv stack by a model's controls: rtnt's
// film-1 JSON (docs/film_format.md).
//
// FilmSplit is the model's first layer: it takes the frames [x, c1..cK] and passes x on, and hands the
// controls to its FilmConditioner. The conditioner runs the conditioning MLP (tanh dense layers) and every
// adaptor only at a sample whose controls differ from the previous sample's, so constant knobs cost nothing
// and the values do not depend on how a signal is cut into blocks. FilmEpilogue runs in a modulated conv's
// epilogue (before its activation) and computes gamma * z + beta per sample and channel. Everything process() touches is
// allocated in prepare().
#pragma once

#include <cmath>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "../core/aligned.hpp"
#include "../core/layer.hpp"

namespace rtnt {

/// The conditioning network of a FiLM model and the per-sample (gamma, beta) of each modulated layer.
class FilmConditioner {
public:
    struct Dense {
        int in = 0, out = 0;
        std::vector<float> kernel;  // (in, out) row-major
        std::vector<float> bias;    // (out,)
    };

    /// `mlp`: the tanh dense layers from the K controls to H; `adaptors`: per modulated layer a dense H -> 2 C
    /// (rows [0, C) gamma, [C, 2 C) beta). The loader checks the sizes.
    FilmConditioner(int num_controls, std::vector<Dense> mlp, std::vector<Dense> adaptors)
        : k_(num_controls), mlp_(std::move(mlp)), adaptors_(std::move(adaptors)) {
        int widest = k_;
        for (const Dense& d : mlp_) widest = d.out > widest ? d.out : widest;
        a_.assign(static_cast<std::size_t>(widest), 0.0f);
        b_.assign(static_cast<std::size_t>(widest), 0.0f);
        last_.assign(static_cast<std::size_t>(k_), 0.0f);
        rows_.resize(adaptors_.size());
    }

    int num_controls() const noexcept { return k_; }
    std::size_t num_adaptors() const noexcept { return adaptors_.size(); }
    int channels(std::size_t adaptor) const noexcept { return adaptors_[adaptor].out / 2; }

    /// Multiply-accumulates of one evaluation (run only when a control changes).
    double macs_per_change() const noexcept {
        double m = 0.0;
        for (const Dense& d : mlp_) m += double(d.in) * d.out;
        for (const Dense& d : adaptors_) m += double(d.in) * d.out;
        return m;
    }

    /// Room for pieces of up to max_block frames: one (gamma, beta) row per possible change plus the carried one.
    void prepare(int max_block) {
        slots_ = max_block + 1;
        for (std::size_t a = 0; a < adaptors_.size(); ++a)
            rows_[a].assign(static_cast<std::size_t>(slots_) * adaptors_[a].out, 0.0f);
        row_of_frame_.assign(static_cast<std::size_t>(max_block), 0);
        reset();
    }

    /// Forgets the previous controls: the next sample evaluates the network.
    void reset() noexcept {
        valid_ = false;
        current_ = 0;
    }

    /// Reads the K controls of n frames (channels 1..K of rows of stride `stride`) and fixes every frame's
    /// (gamma, beta) row, evaluating the network where the controls change.
    void update(const float* frames, int stride, int n) noexcept {
        if (current_ != 0) {
            for (std::size_t a = 0; a < adaptors_.size(); ++a) {
                const int w = adaptors_[a].out;
                std::memcpy(rows_[a].data(), rows_[a].data() + static_cast<long>(current_) * w, sizeof(float) * w);
            }
            current_ = 0;
        }
        bool fresh_slot = false;  // slot 0 carries the previous piece's values; a change takes the next slot
        for (int t = 0; t < n; ++t) {
            const float* c = frames + static_cast<long>(t) * stride + 1;
            bool changed = !valid_;
            for (int j = 0; j < k_ && !changed; ++j) changed = c[j] != last_[j];
            if (changed) {
                if (valid_ || fresh_slot) ++current_;
                fresh_slot = true;
                std::memcpy(last_.data(), c, sizeof(float) * k_);
                valid_ = true;
                evaluate(current_);
            }
            row_of_frame_[t] = current_;
        }
    }

    /// The (gamma, beta) row (2 C floats) of frame t of the last update, for adaptor `adaptor`.
    const float* gamma_beta(std::size_t adaptor, int t) const noexcept {
        return rows_[adaptor].data() + static_cast<long>(row_of_frame_[t]) * adaptors_[adaptor].out;
    }

private:
    void evaluate(int slot) noexcept {
        const float* h = last_.data();
        float* bufs[2] = {a_.data(), b_.data()};
        int which = 0;
        for (const Dense& d : mlp_) {
            float* y = bufs[which];
            affine(d, h, y);
            for (int o = 0; o < d.out; ++o) y[o] = std::tanh(y[o]);
            h = y;
            which ^= 1;
        }
        for (std::size_t a = 0; a < adaptors_.size(); ++a)
            affine(adaptors_[a], h, rows_[a].data() + static_cast<long>(slot) * adaptors_[a].out);
    }

    static void affine(const Dense& d, const float* x, float* y) noexcept {
        for (int o = 0; o < d.out; ++o) y[o] = d.bias[o];
        for (int i = 0; i < d.in; ++i) {
            const float xi = x[i];
            const float* w = d.kernel.data() + static_cast<long>(i) * d.out;
            for (int o = 0; o < d.out; ++o) y[o] += xi * w[o];
        }
    }

    int k_;
    std::vector<Dense> mlp_, adaptors_;
    std::vector<float> a_, b_, last_;
    std::vector<std::vector<float>> rows_;
    std::vector<int> row_of_frame_;
    int slots_ = 0;
    int current_ = 0;
    bool valid_ = false;
};

/// The first layer of a FiLM model: frames (1 + K channels) in, the audio channel out; feeds the conditioner.
class FilmSplit final : public Layer {
public:
    explicit FilmSplit(std::unique_ptr<FilmConditioner> conditioner)
        : Layer(1 + conditioner->num_controls(), 1), conditioner_(std::move(conditioner)) {}

    FilmConditioner* conditioner() noexcept { return conditioner_.get(); }

    void prepare(int max_block) override { conditioner_->prepare(max_block); }
    void reset() noexcept override { conditioner_->reset(); }

    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        conditioner_->update(in, in_stride, n);
        for (int t = 0; t < n; ++t) store_mono(out, padded(1), t, in[static_cast<long>(t) * in_stride]);
    }

private:
    std::unique_ptr<FilmConditioner> conditioner_;  // owned here; FilmEpilogues hold its address (stable on the heap)
};

/// The conv epilogue of a modulated layer: gamma * z + beta per sample and channel, before the conv's activation,
/// with the conditioner's rows of the current piece.
class FilmEpilogue final : public Epilogue {
public:
    FilmEpilogue(const FilmConditioner* conditioner, std::size_t adaptor) noexcept
        : conditioner_(conditioner), adaptor_(adaptor) {}

    int channels() const noexcept { return conditioner_->channels(adaptor_); }

    void apply(float* out, int stride, int channels, int n) const noexcept override {
        for (int t = 0; t < n; ++t) {
            const float* gb = conditioner_->gamma_beta(adaptor_, t);
            float* y = out + static_cast<long>(t) * stride;
            for (int ch = 0; ch < channels; ++ch) y[ch] = gb[ch] * y[ch] + gb[channels + ch];
        }
    }

private:
    const FilmConditioner* conditioner_;
    std::size_t adaptor_;
};

}  // namespace rtnt
