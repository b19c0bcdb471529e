// Oversampled run of memoryless layers (rtnt gray-box `oversampling` object): polyphase interpolator, the
// layers at factor times the rate, polyphase decimator.
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "../core/aligned.hpp"
#include "../core/layer.hpp"
#include "../core/math.hpp"

namespace rtnt {

/// Mono in, mono out: `inner` (memoryless layers, mono in and out as a chain) runs at `factor` times the rate.
/// The file's taps are the minimum-phase lowpass of docs/graybox_format.md (`up` with gain `factor` included):
///   up:   u[nF + p] = sum_j up[p + jF] x[n - j]   (only the non-zero products of the zero-stuffed signal)
///   down: y[n]      = sum_k down[k] v[nF - k]      (only the kept outputs, phase 0 of each frame)
/// Each sum is a `dot_lanes` product of the time-reversed taps (zero-padded to whole lanes) with the history:
/// one fixed-order float32 sum per output, so the result does not depend on how a signal is cut into blocks.
/// After prepare(), process() and reset() allocate nothing.
class Oversampled final : public Layer {
public:
    Oversampled(int factor, const std::vector<float>& up, const std::vector<float>& down,
                std::vector<std::unique_ptr<Layer>> inner)
        : Layer(1, 1), factor_(factor), taps_(static_cast<int>(down.size())), inner_(std::move(inner)) {
        if (factor_ < 2) throw std::invalid_argument("an oversampling factor must be >= 2");
        if (up.empty() || down.empty()) throw std::invalid_argument("oversampling taps must not be empty");
        if (inner_.empty() || inner_.front()->in_size() != 1 || inner_.back()->out_size() != 1)
            throw std::invalid_argument("an oversampled run needs layers, mono in and out");
        phase_len_ = (static_cast<int>(up.size()) + factor_ - 1) / factor_;
        up_len_ = whole_lanes(phase_len_);
        down_len_ = whole_lanes(taps_);
        up_rev_.assign(static_cast<std::size_t>(factor_) * up_len_, 0.0f);
        for (std::size_t k = 0; k < up.size(); ++k) {
            const int p = static_cast<int>(k) % factor_, j = static_cast<int>(k) / factor_;
            up_rev_[static_cast<std::size_t>(p) * up_len_ + (up_len_ - 1 - j)] = up[k];
        }
        down_rev_.assign(static_cast<std::size_t>(down_len_), 0.0f);
        for (int k = 0; k < taps_; ++k) down_rev_[static_cast<std::size_t>(down_len_ - 1 - k)] = down[k];
        prepare(64);
    }

    void prepare(int max_block) override {
        const int high = max_block * factor_;
        int widest = 1;
        for (auto& l : inner_) {
            l->prepare(high);
            widest = std::max(widest, padded(l->out_size()));
        }
        ping_.assign(static_cast<std::size_t>(high) * widest, 0.0f);
        pong_.assign(static_cast<std::size_t>(high) * widest, 0.0f);
        x_hist_.assign(static_cast<std::size_t>(up_len_ - 1 + max_block), 0.0f);
        v_hist_.assign(static_cast<std::size_t>(down_len_ - 1 + high), 0.0f);
        reset();
    }

    void reset() noexcept override {
        std::fill(x_hist_.begin(), x_hist_.end(), 0.0f);
        std::fill(v_hist_.begin(), v_hist_.end(), 0.0f);
        for (auto& l : inner_) l->reset();
    }

    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        const int s1 = padded(1);
        const int xh = up_len_ - 1;
        float* x = x_hist_.data();
        for (int t = 0; t < n; ++t) x[xh + t] = in[static_cast<long>(t) * in_stride];
        for (int t = 0; t < n; ++t)
            for (int p = 0; p < factor_; ++p)
                store_mono(ping_.data(), s1, t * factor_ + p,
                           dot_lanes(up_rev_.data() + static_cast<long>(p) * up_len_, x + t, up_len_));
        std::memmove(x, x + n, sizeof(float) * static_cast<std::size_t>(xh));

        const int m = n * factor_;
        const float* cur = ping_.data();
        int stride = s1;
        float* bufs[2] = {pong_.data(), ping_.data()};
        int which = 0;
        for (auto& l : inner_) {
            l->process(cur, stride, bufs[which], m);
            cur = bufs[which];
            stride = padded(l->out_size());
            which ^= 1;
        }

        const int vh = down_len_ - 1;
        float* v = v_hist_.data();
        for (int i = 0; i < m; ++i) v[vh + i] = cur[static_cast<long>(i) * stride];
        for (int t = 0; t < n; ++t) store_mono(out, s1, t, dot_lanes(down_rev_.data(), v + t * factor_, down_len_));
        std::memmove(v, v + m, sizeof(float) * static_cast<std::size_t>(vh));
    }

    double macs_per_sample() const noexcept override {
        double inner = 0.0;
        for (const auto& l : inner_) inner += l->macs_per_sample();
        return static_cast<double>(factor_ * phase_len_ + taps_) + factor_ * inner;
    }

    int lookback() const noexcept override { return phase_len_ - 1 + (taps_ - 1 + factor_ - 1) / factor_; }

private:
    static int whole_lanes(int n) noexcept { return (n + kDotLanes - 1) / kDotLanes * kDotLanes; }

    int factor_;
    int taps_;
    int phase_len_ = 0;
    int up_len_ = 0;    // phase_len_ rounded up to whole dot_lanes lanes
    int down_len_ = 0;  // taps_ rounded up likewise
    FloatVec up_rev_;   // phase p's taps up[p + jF], time-reversed: at p * up_len_ + (up_len_ - 1 - j)
    FloatVec down_rev_; // down[k] at down_len_ - 1 - k
    std::vector<std::unique_ptr<Layer>> inner_;
    FloatVec ping_, pong_, x_hist_, v_hist_;
};

}  // namespace rtnt
