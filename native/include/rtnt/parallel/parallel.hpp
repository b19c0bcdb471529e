// Parallel branches summed (rtnt gray-box `parallel`): y = sum_k branch_k(x), an empty branch the identity.
#pragma once

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "../core/aligned.hpp"
#include "../core/layer.hpp"

namespace rtnt {

/// Mono in, mono out. Each branch is a chain of layers (any widths inside, mono at both ends) run on the
/// layer's input; the branch outputs are summed in float32 in branch order, as the reference runtime and
/// Keras' Add layer do. prepare() allocates two scratch buffers of max_block rows of the widest branch layer
/// (the branches run one after another and share them); process() and reset() allocate nothing. Every branch
/// layer keeps its own state, so the sum is block-invariant when the branch layers are.
class Parallel final : public Layer {
public:
    using Branch = std::vector<std::unique_ptr<Layer>>;

    explicit Parallel(std::vector<Branch> branches) : Layer(1, 1), branches_(std::move(branches)) {}

    void prepare(int max_block) override {
        int widest = padded(1);
        for (auto& branch : branches_)
            for (auto& l : branch) {
                l->prepare(max_block);
                widest = std::max(widest, padded(l->out_size()));
            }
        ping_.assign(static_cast<std::size_t>(max_block) * widest, 0.0f);
        pong_.assign(static_cast<std::size_t>(max_block) * widest, 0.0f);
    }

    void reset() noexcept override {
        for (auto& branch : branches_)
            for (auto& l : branch) l->reset();
    }

    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        const int s = padded(1);
        for (std::size_t k = 0; k < branches_.size(); ++k) {
            const float* cur = in;
            int stride = in_stride;
            float* bufs[2] = {ping_.data(), pong_.data()};
            int which = 0;
            for (auto& l : branches_[k]) {
                l->process(cur, stride, bufs[which], n);
                cur = bufs[which];
                stride = padded(l->out_size());
                which ^= 1;
            }
            for (int t = 0; t < n; ++t) {
                const float v = cur[static_cast<long>(t) * stride];
                if (k == 0)
                    store_mono(out, s, t, v);
                else
                    out[static_cast<long>(t) * s] += v;
            }
        }
    }

    /// Every branch's multiply-accumulates.
    double macs_per_sample() const noexcept override {
        double m = 0.0;
        for (const auto& branch : branches_)
            for (const auto& l : branch) m += l->macs_per_sample();
        return m;
    }

    /// The longest branch's look-back.
    int lookback() const noexcept override {
        int longest = 0;
        for (const auto& branch : branches_) {
            int sum = 0;
            for (const auto& l : branch) sum += l->lookback();
            longest = std::max(longest, sum);
        }
        return longest;
    }

    std::size_t num_branches() const noexcept { return branches_.size(); }
    const Branch& branch(std::size_t k) const { return branches_.at(k); }

private:
    std::vector<Branch> branches_;
    FloatVec ping_, pong_;
};

}  // namespace rtnt
