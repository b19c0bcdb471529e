// The loaders' error type, their resource limits and message helpers.
#pragma once

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace rtnt {

/// A model file that is malformed or unsupported. what() is one line naming where and what.
class ModelError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Bounds that keep a hostile file from requesting unbounded memory.
struct LoaderLimits {
    static constexpr int max_size = 4096;              // channels, units, input size
    static constexpr int max_layers = 1024;
    static constexpr int max_kernel = 1024;
    static constexpr int max_dilation = 1 << 20;
    static constexpr long max_lookback = 1L << 22;     // (kernel_size - 1) * dilation, samples
    static constexpr long max_history_floats = 1L << 24;  // lookback * in_channels per conv layer
};

namespace detail {

/// A JSON number for a message: whole numbers in full, anything else as %g.
inline std::string number_str(double v) {
    if (std::fabs(v) < 1e15 && v == std::floor(v)) return std::to_string(static_cast<long long>(v));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

}  // namespace detail
}  // namespace rtnt
