// Inference-time batch normalisation: y = gamma (x - mean) / sqrt(var + eps) + beta, per channel.
#pragma once

#include <cmath>
#include <vector>

#include "../core/aligned.hpp"
#include "../core/layer.hpp"

namespace rtnt {

class BatchNorm final : public Layer {
public:
    /// gamma and beta may be empty (not affine: 1 and 0); mean and var have `size` entries.
    BatchNorm(int size, const std::vector<float>& gamma, const std::vector<float>& beta, const std::vector<float>& mean,
              const std::vector<float>& var, float epsilon)
        : Layer(size, size), scale_(padded(size), 0.0f), shift_(padded(size), 0.0f) {
        for (int c = 0; c < size; ++c) {
            const float g = gamma.empty() ? 1.0f : gamma[c];
            const float b = beta.empty() ? 0.0f : beta[c];
            scale_[c] = g / std::sqrt(var[c] + epsilon);
            shift_[c] = b - mean[c] * scale_[c];
        }
    }

    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        const int s = padded(out_size());
        const float* RTNT_RESTRICT sc = scale_.data();
        const float* RTNT_RESTRICT sh = shift_.data();
        for (int t = 0; t < n; ++t) {
            const float* RTNT_RESTRICT x = in + static_cast<long>(t) * in_stride;
            float* RTNT_RESTRICT y = out + static_cast<long>(t) * s;
            for (int c = 0; c < in_size(); ++c) y[c] = x[c] * sc[c] + sh[c];
            for (int c = in_size(); c < s; ++c) y[c] = 0.0f;
        }
    }

private:
    FloatVec scale_, shift_;
};

}  // namespace rtnt
