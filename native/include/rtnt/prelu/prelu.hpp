// PReLU: y = x for x >= 0, alpha[c] x otherwise (alpha per channel or shared).
#pragma once

#include <vector>

#include "../core/aligned.hpp"
#include "../core/layer.hpp"

namespace rtnt {

class PRelu final : public Layer {
public:
    /// alpha has `size` entries, or one entry shared by all channels.
    PRelu(int size, const std::vector<float>& alpha) : Layer(size, size), alpha_(padded(size), 0.0f) {
        for (int c = 0; c < size; ++c) alpha_[c] = alpha.size() == 1 ? alpha[0] : alpha[c];
    }

    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        const int s = padded(out_size());
        const float* RTNT_RESTRICT a = alpha_.data();
        for (int t = 0; t < n; ++t) {
            const float* RTNT_RESTRICT x = in + static_cast<long>(t) * in_stride;
            float* RTNT_RESTRICT y = out + static_cast<long>(t) * s;
            for (int c = 0; c < in_size(); ++c) y[c] = x[c] >= 0.0f ? x[c] : a[c] * x[c];
            for (int c = in_size(); c < s; ++c) y[c] = 0.0f;
        }
    }

private:
    FloatVec alpha_;
};

}  // namespace rtnt
