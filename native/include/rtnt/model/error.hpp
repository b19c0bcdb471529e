// The loaders' error type, their resource limits and message helpers.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <optional>
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
    static constexpr int max_fir_taps = 1 << 18;       // gray-box fir: 5.5 s at 48 kHz
    static constexpr int max_biquad_sections = 1024;
    static constexpr int max_oversampling_taps = 1024;  // gray-box oversampling filters (rtnt ships 48 and 96)
    static constexpr int max_parallel_depth = 8;       // gray-box parallel layers nested in branches
    /// The largest model file read (16 MiB, 25x NAM's A2 full): parsing costs tens of bytes per
    /// byte of JSON, so the cap also bounds the parser's memory.
    static constexpr std::size_t max_file_bytes = std::size_t(16) << 20;
    /// The default budget for a model's weights plus streaming state (64 MiB; NAM A1 standard
    /// needs about 0.2 MiB). See LoadOptions::memory_budget_bytes.
    static constexpr std::size_t default_memory_budget_bytes = std::size_t(64) << 20;
};

/// Options for loading a model file.
struct LoadOptions {
    /// For a SlimmableContainer: choose the submodel as NAM Core's SetSlimmableSize(value) does
    /// (the first whose max_value exceeds the value; 0 picks the smallest). Unset: the default,
    /// the last (largest) submodel. Setting it for any other model is an error.
    std::optional<double> slim;
    /// The most memory the model's weights and streaming state (conv histories) may take, in
    /// bytes, checked while loading, before anything large is allocated. Block buffers, sized by
    /// prepare(max_block), come on top.
    std::size_t memory_budget_bytes = LoaderLimits::default_memory_budget_bytes;
    /// How a gray-box `fir` layer convolves: Auto picks by tap count (Fir::automatic); Direct or
    /// Partitioned force one form (benchmarks, tests). Both give the same output within float rounding.
    enum class FirForm { Auto, Direct, Partitioned } fir_form = FirForm::Auto;
};

namespace detail {

inline std::string mib_str(double bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f MiB", bytes / double(1 << 20));
    return buf;
}

/// Sums the float32 values (weights and state) a model will hold while it is being loaded, and
/// stops the load at the first part that takes the total past the budget.
class MemoryBudget {
public:
    explicit MemoryBudget(std::size_t bytes) noexcept : limit_(double(bytes)) {}

    /// Adds `values` floats for the part named `where`; throws ModelError once over budget.
    void charge(double values, const std::string& where) {
        used_ += 4.0 * values;
        if (used_ > limit_)
            throw ModelError(where + ": the model's weights and state reach " + mib_str(used_) + " here, more than the " +
                             mib_str(limit_) + " memory budget (LoadOptions::memory_budget_bytes); a real-time model " +
                             "needs far less, so check its sizes, kernel sizes and dilations");
    }

private:
    double limit_;
    double used_ = 0.0;
};

/// A JSON number for a message: whole numbers in full, anything else as %g.
inline std::string number_str(double v) {
    if (std::fabs(v) < 1e15 && v == std::floor(v)) return std::to_string(static_cast<long long>(v));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

}  // namespace detail
}  // namespace rtnt
