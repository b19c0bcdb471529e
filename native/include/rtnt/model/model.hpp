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

/// A block runs through the layers in pieces of at most kPieceFrames frames: each piece goes
/// through every layer before the next starts, and activations ping-pong between two scratch
/// buffers of one piece. Pieces keep the working set in L1/L2 whatever the host's block size: the
/// scratch buffers stay small, and every conv history ring holds its look-back plus one piece, so
/// the row a block overwrites is one the previous piece has just read (a ring sized by the host's
/// max block halves the speed at block 1). After prepare(), process() allocates nothing, takes no
/// lock and makes no system call. Instances share no state, so one per channel is safe.
class Model {
public:
    static constexpr int kDefaultMaxBlock = 256;
    static constexpr int kMaxBlockLimit = 1 << 16;
    /// Frames per pass through the layers; measured in docs/benchmarks/native.md.
    static constexpr int kPieceFrames = 64;

    /// Takes ownership of a non-empty chain of layers whose sizes match (the loader checks this),
    /// and prepares for blocks of kDefaultMaxBlock.
    Model(int in_size, std::vector<std::unique_ptr<Layer>> layers) : in_size_(in_size), layers_(std::move(layers)) {
        if (layers_.empty()) throw std::invalid_argument("a model needs at least one layer");
        prepare(kDefaultMaxBlock);
    }

    Model(Model&&) noexcept = default;
    Model& operator=(Model&&) noexcept = default;
    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

    int in_size() const noexcept { return in_size_; }
    int out_size() const noexcept { return layers_.back()->out_size(); }
    int max_block() const noexcept { return max_block_; }
    std::size_t num_layers() const noexcept { return layers_.size(); }
    const Layer& layer(std::size_t i) const { return *layers_.at(i); }

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
        max_block_ = max_block;
        piece_ = piece;
        reset();
    }

    /// Zeroes all streaming state, as at the start of a signal.
    void reset() noexcept {
        for (auto& l : layers_) l->reset();
    }

    /// Processes n frames: in holds n * in_size() floats, out receives n * out_size() floats
    /// (frames interleaved). Any n is accepted; the result does not depend on how a signal is cut.
    void process(const float* in, float* out, int n) noexcept {
        DenormalGuard ftz;
        const int os = out_size();
        for (int done = 0; done < n;) {
            const int m = std::min(piece_, n - done);
            const float* cur = in + static_cast<long>(done) * in_size_;
            int stride = in_size_;
            float* bufs[2] = {ping_.data(), pong_.data()};
            int which = 0;
            for (auto& l : layers_) {
                float* dst = bufs[which];
                l->process(cur, stride, dst, m);
                cur = dst;
                stride = padded(l->out_size());
                which ^= 1;
            }
            float* o = out + static_cast<long>(done) * os;
            if (os == stride) {
                std::memcpy(o, cur, sizeof(float) * static_cast<std::size_t>(m) * os);
            } else {
                for (int t = 0; t < m; ++t)
                    for (int c = 0; c < os; ++c) o[static_cast<long>(t) * os + c] = cur[static_cast<long>(t) * stride + c];
            }
            done += m;
        }
    }

private:
    int in_size_;
    std::vector<std::unique_ptr<Layer>> layers_;
    int max_block_ = 0;
    int piece_ = 0;
    FloatVec ping_, pong_;
};

}  // namespace rtnt
