// Activation functions (tanh, relu, sigmoid, softmax, elu) and the standalone activation layer.
#pragma once

#include <cstring>
#include <string>

#include "../core/aligned.hpp"
#include "../core/lanes.hpp"
#include "../core/layer.hpp"
#include "../core/math.hpp"

namespace rtnt {

enum class Activation { Identity, Tanh, Relu, Sigmoid, Softmax, Elu };

/// Maps an RTNeural activation name ("" or "linear" is the identity); returns false if unknown.
inline bool activation_from_name(const std::string& name, Activation& out) noexcept {
    if (name.empty() || name == "linear") out = Activation::Identity;
    else if (name == "tanh") out = Activation::Tanh;
    else if (name == "relu") out = Activation::Relu;
    else if (name == "sigmoid") out = Activation::Sigmoid;
    else if (name == "softmax") out = Activation::Softmax;
    else if (name == "elu") out = Activation::Elu;
    else return false;
    return true;
}

/// Applies `a` in place to `rows` rows of `channels` values spaced `stride` (= padded(channels)) apart.
/// Elementwise functions also run over the padding lanes, which hold finite don't-care values.
inline void apply_activation(Activation a, float* x, int rows, int stride, int channels) noexcept {
    const int total = rows * stride;
    switch (a) {
        case Activation::Identity: break;
        case Activation::Tanh: tanh_inplace(x, total); break;
        case Activation::Relu: relu_inplace(x, total); break;
        case Activation::Sigmoid: sigmoid_inplace(x, total); break;
        case Activation::Elu: elu_inplace(x, total); break;
        case Activation::Softmax: softmax_rows(x, rows, stride, channels); break;
    }
}

/// RTNeural's "activation" layer: the function alone, same size in and out.
class ActivationLayer final : public Layer {
public:
    ActivationLayer(int size, Activation a) noexcept : Layer(size, size), act_(a) {}

    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        const int stride = padded(out_size());
        for (int t = 0; t < n; ++t) {
            std::memcpy(out + static_cast<long>(t) * stride, in + static_cast<long>(t) * in_stride,
                        sizeof(float) * static_cast<std::size_t>(in_size()));
            std::memset(out + static_cast<long>(t) * stride + in_size(), 0,
                        sizeof(float) * static_cast<std::size_t>(stride - in_size()));
        }
        apply_activation(act_, out, n, stride, out_size());
    }

private:
    Activation act_;
};

}  // namespace rtnt
