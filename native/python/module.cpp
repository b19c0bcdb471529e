// rtnt._native: Python bindings of the native runtime (nanobind).
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/resource.h>
#endif

#include "rtnt.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using InArray = nb::ndarray<const float, nb::c_contig, nb::device::cpu>;
using FloatArray = nb::ndarray<nb::numpy, float>;
using DoubleArray = nb::ndarray<nb::numpy, double, nb::ndim<1>>;

rtnt::LoadOptions load_options(std::optional<double> slim, const std::string& fir_form = "auto") {
    rtnt::LoadOptions o;
    o.slim = slim;
    if (fir_form == "direct") {
        o.fir_form = rtnt::LoadOptions::FirForm::Direct;
    } else if (fir_form == "partitioned") {
        o.fir_form = rtnt::LoadOptions::FirForm::Partitioned;
    } else if (fir_form != "auto") {
        throw nb::value_error(("fir_form must be 'auto', 'direct' or 'partitioned', got '" + fir_form + "'").c_str());
    }
    return o;
}

/// Number of frames in x after checking that its channel layout matches the model input. A
/// conditioned model takes mono x and, in `controls`, K values per sample (K floats per frame).
std::size_t frames_of(const rtnt::Model& m, const InArray& x, const std::optional<InArray>& controls) {
    const int k = m.num_controls();
    if (k > 0) {
        if (x.ndim() != 1) throw nb::value_error("a conditioned model takes a 1-D signal x and its controls separately");
        if (!controls || controls->ndim() != 2 || controls->shape(0) != x.shape(0) ||
            controls->shape(1) != static_cast<std::size_t>(k))
            throw nb::value_error(("this model takes " + std::to_string(k) + " control(s): pass controls of shape (" +
                                   std::to_string(x.shape(0)) + ", " + std::to_string(k) + "), one row per sample").c_str());
        return x.shape(0);
    }
    if (controls) throw nb::value_error("this model takes no controls; pass controls=None");
    if (x.ndim() == 1 && m.in_size() == 1) return x.shape(0);
    if (x.ndim() == 2 && x.shape(1) == static_cast<std::size_t>(m.in_size())) return x.shape(0);
    throw nb::value_error(("input must have shape (n,) for a 1-input model or (n, " + std::to_string(m.in_size()) +
                           ") for this one").c_str());
}

template <typename T>
nb::capsule owner_of(T* data) {
    return nb::capsule(data, [](void* p) noexcept { delete[] static_cast<T*>(p); });
}

/// A numpy array owning a copy of v.
DoubleArray to_array(const std::vector<double>& v) {
    double* data = new double[v.size()];
    std::copy(v.begin(), v.end(), data);
    return DoubleArray(data, {v.size()}, owner_of(data));
}

/// Runs k frames from frame `done` on: interleaved frames, or mono samples plus their controls.
void process_range(rtnt::Model& m, const float* in, const float* controls, float* out, std::size_t done, std::size_t k) {
    const std::size_t os = static_cast<std::size_t>(m.out_size());
    if (m.num_controls() > 0)
        m.process(in + done, out + done * os, static_cast<int>(k), controls + done * m.num_controls());
    else
        m.process(in + done * m.in_size(), out + done * os, static_cast<int>(k));
}

FloatArray process(rtnt::Model& m, const InArray& x, const std::optional<InArray>& controls) {
    const std::size_t n = frames_of(m, x, controls);
    const std::size_t os = static_cast<std::size_t>(m.out_size());
    float* out = new float[std::max<std::size_t>(n * os, 1)];
    {
        nb::gil_scoped_release release;
        const float* c = controls ? controls->data() : nullptr;
        const std::size_t chunk = 1u << 30;  // process() takes an int count
        for (std::size_t done = 0; done < n; done += chunk) process_range(m, x.data(), c, out, done, std::min(chunk, n - done));
    }
    if (os == 1) return FloatArray(out, {n}, owner_of(out));
    return FloatArray(out, {n, os}, owner_of(out));
}

/// Processes x from the current state in consecutive blocks of `block` frames (the last one
/// shorter), every call in C++: a host's block loop without Python overhead per block.
FloatArray process_blocks(rtnt::Model& m, const InArray& x, int block, const std::optional<InArray>& controls) {
    if (block < 1) throw nb::value_error("block must be >= 1");
    const std::size_t n = frames_of(m, x, controls);
    const std::size_t os = static_cast<std::size_t>(m.out_size());
    float* out = new float[std::max<std::size_t>(n * os, 1)];
    {
        nb::gil_scoped_release release;
        const float* c = controls ? controls->data() : nullptr;
        const std::size_t step = static_cast<std::size_t>(block);
        for (std::size_t done = 0; done < n; done += step) process_range(m, x.data(), c, out, done, std::min(step, n - done));
    }
    if (os == 1) return FloatArray(out, {n}, owner_of(out));
    return FloatArray(out, {n, os}, owner_of(out));
}

/// Involuntary context switches of the calling thread so far (-1 where not measurable).
long involuntary_switches() {
#if defined(__linux__)
    rusage u{};
    if (getrusage(RUSAGE_THREAD, &u) == 0) return u.ru_nivcsw;
#endif
    return -1;
}

/// Processes x block by block after `warmup` untimed blocks. Returns the wall time of each timed
/// block in seconds, the total wall time of the timed loop, and how often the OS preempted the
/// thread during it (involuntary context switches; -1 if unknown). A conditioned model reads its
/// per-sample controls (n, K) alongside.
nb::tuple bench(rtnt::Model& m, const InArray& x, int block, int warmup, const std::optional<InArray>& controls) {
    if (block < 1 || block > m.max_block())
        throw nb::value_error(("block must be in [1, max_block=" + std::to_string(m.max_block()) + "]; call prepare() first").c_str());
    const std::size_t n = frames_of(m, x, controls);
    const std::size_t blocks = n / static_cast<std::size_t>(block);
    if (blocks == 0) throw nb::value_error("the input is shorter than one block");
    const std::size_t os = static_cast<std::size_t>(m.out_size());
    std::unique_ptr<float[]> out(new float[static_cast<std::size_t>(block) * os]);
    double* times = new double[blocks];
    double total = 0.0;
    long switches = -1;
    {
        nb::gil_scoped_release release;
        using clock = std::chrono::steady_clock;
        const float* in = x.data();
        const float* c = controls ? controls->data() : nullptr;
        const std::size_t k = static_cast<std::size_t>(m.num_controls());
        const std::size_t step = static_cast<std::size_t>(block);
        auto run_block = [&](std::size_t b) {
            if (k > 0)
                m.process(in + b * step, out.get(), block, c + b * step * k);
            else
                m.process(in + b * step * m.in_size(), out.get(), block);
        };
        for (int w = 0; w < warmup; ++w) run_block(static_cast<std::size_t>(w) % blocks);
        const long switches_before = involuntary_switches();
        const auto start = clock::now();
        auto prev = start;
        for (std::size_t b = 0; b < blocks; ++b) {
            run_block(b);
            const auto now = clock::now();
            times[b] = std::chrono::duration<double>(now - prev).count();
            prev = now;
        }
        total = std::chrono::duration<double>(prev - start).count();
        const long switches_after = involuntary_switches();
        if (switches_before >= 0 && switches_after >= 0) switches = switches_after - switches_before;
    }
    return nb::make_tuple(DoubleArray(times, {blocks}, owner_of(times)), total, switches);
}

/// Spins on the clock for `seconds` and returns the start (seconds from the first reading) and the
/// length of every gap between consecutive readings longer than `threshold` seconds: time in which
/// this thread did not run (interrupts, the OS or a hypervisor running something else).
nb::tuple clock_gaps(double seconds, double threshold) {
    if (!(seconds > 0.0 && seconds <= 60.0)) throw nb::value_error("seconds must be in (0, 60]");
    if (!(threshold > 0.0)) throw nb::value_error("threshold must be > 0");
    std::vector<double> at, length;
    {
        nb::gil_scoped_release release;
        using clock = std::chrono::steady_clock;
        const auto start = clock::now();
        auto prev = start;
        for (;;) {
            const auto now = clock::now();
            const double gap = std::chrono::duration<double>(now - prev).count();
            if (gap > threshold) {
                at.push_back(std::chrono::duration<double>(prev - start).count());
                length.push_back(gap);
            }
            prev = now;
            if (std::chrono::duration<double>(now - start).count() >= seconds) break;
        }
    }
    return nb::make_tuple(to_array(at), to_array(length));
}

/// The same arithmetic on the same L1-resident data at every call: `iterations` passes of a
/// 256-float multiply-add loop. Returns a value so that the work is not optimised away.
float fixed_work(float* data, long iterations) noexcept {
    float sum = 0.0f;
    for (long k = 0; k < iterations; ++k)
        for (int i = 0; i < 256; ++i) {
            data[i] = data[i] * 0.999f + 0.001f;
            sum += data[i];
        }
    return sum;
}

/// Times `calls` calls of fixed_work sized to take about `call_seconds` each (calibrated on the
/// fastest of a few trial calls): the machine's spread of per-call times for work that never varies.
DoubleArray constant_work(double call_seconds, int calls) {
    if (!(call_seconds > 0.0 && call_seconds <= 1.0)) throw nb::value_error("call_seconds must be in (0, 1]");
    if (calls < 1) throw nb::value_error("calls must be >= 1");
    std::vector<double> times(static_cast<std::size_t>(calls));
    {
        nb::gil_scoped_release release;
        using clock = std::chrono::steady_clock;
        std::vector<float> data(256, 1.0f);
        volatile float sink = 0.0f;
        const long probe = 64;
        double fastest = 1e9;
        for (int t = 0; t < 20; ++t) {
            const auto t0 = clock::now();
            sink = sink + fixed_work(data.data(), probe);
            fastest = std::min(fastest, std::chrono::duration<double>(clock::now() - t0).count());
        }
        const long iterations = std::max(1L, static_cast<long>(call_seconds / (fastest / probe)));
        auto prev = clock::now();
        for (double& t : times) {
            sink = sink + fixed_work(data.data(), iterations);
            const auto now = clock::now();
            t = std::chrono::duration<double>(now - prev).count();
            prev = now;
        }
    }
    return to_array(times);
}

/// Compiler and vector ISA this extension was built with, for benchmark reports.
nb::dict build_info() {
    nb::dict d;
#if defined(__clang__)
    d["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    d["compiler"] = std::string("gcc ") + __VERSION__;
#elif defined(_MSC_VER)
    d["compiler"] = std::string("msvc ") + std::to_string(_MSC_VER);
#else
    d["compiler"] = std::string("unknown");
#endif
    std::string isa;
#if defined(__AVX512F__)
    isa += "avx512f ";
#endif
#if defined(__AVX2__)
    isa += "avx2 ";
#endif
#if defined(__FMA__)
    isa += "fma ";
#endif
#if defined(__aarch64__)
    isa += "neon ";
#endif
    d["vector_isa"] = isa.empty() ? std::string("baseline") : isa.substr(0, isa.size() - 1);
    d["simd_lanes"] = rtnt::detail::kLanes;
    d["vector_registers"] = rtnt::detail::kVectorRegisters;
    return d;
}

}  // namespace

NB_MODULE(_native, m) {
    m.doc() = "rtnt native runtime: streaming RTNeural-format JSON and NAM .nam models in C++";
    nb::exception<rtnt::ModelError>(m, "ModelError", PyExc_ValueError);
    m.attr("max_file_bytes") = rtnt::LoaderLimits::max_file_bytes;
    m.attr("default_memory_budget_bytes") = rtnt::LoaderLimits::default_memory_budget_bytes;

    nb::class_<rtnt::Model>(m, "Model")
        .def_static(
            "from_json_text",
            [](std::string_view text, std::optional<double> slim, const std::string& fir_form) {
                return rtnt::load_model(text, load_options(slim, fir_form));
            },
            "text"_a, "slim"_a = nb::none(), "fir_form"_a = "auto",
            "Load a model from RTNeural JSON or .nam text (raises ModelError). slim picks a SlimmableContainer's "
            "submodel as NAM Core's SetSlimmableSize does; fir_form ('auto', 'direct', 'partitioned') how gray-box "
            "fir layers convolve.")
        .def_static(
            "from_file",
            [](const std::string& path, std::optional<double> slim) { return rtnt::load_model_file(path, load_options(slim)); },
            "path"_a, "slim"_a = nb::none(),
            "Load a model from an RTNeural JSON or .nam file (raises ModelError). slim picks a SlimmableContainer's "
            "submodel as NAM Core's SetSlimmableSize does.")
        .def("prepare", &rtnt::Model::prepare, "max_block"_a, "Allocate for blocks of up to max_block samples and reset.")
        .def("reset", &rtnt::Model::reset,
             "Restart the signal: zero the state, then prewarm on silence if prewarm_on_reset (NAM files).")
        .def_prop_rw("prewarm_on_reset", &rtnt::Model::prewarm_on_reset, &rtnt::Model::set_prewarm_on_reset,
                     "Whether reset() prewarms (NAM Core's default; no effect where prewarm_samples is 0).")
        .def_prop_ro("prewarm_samples", [](const rtnt::Model& m) { return m.info().prewarm_samples; },
                     "Samples of silence NAM Core's prewarm runs (0 for RTNeural JSON).")
        .def_prop_ro("sample_rate", [](const rtnt::Model& m) { return m.info().sample_rate; },
                     "The sample rate the file declares, or -1.")
        .def_prop_ro("description", [](const rtnt::Model& m) { return m.info().description; },
                     "One line naming the format and architecture.")
        .def_prop_ro("kernels", [](const rtnt::Model& m) { return m.info().kernels; },
                     "How a NAM WaveNet runs: 'narrow', 'fused' or 'generic' per layer array, space-separated; "
                     "empty for other models.")
        .def("process", &process, "x"_a, "controls"_a = nb::none(),
             "Process float32 frames causally, carrying state across calls; a conditioned model takes mono x and "
             "controls (n, K).")
        .def_prop_ro("controls",
                     [](const rtnt::Model& m) {
                         nb::list out;
                         for (const auto& c : m.info().controls)
                             out.append(nb::make_tuple(c.name, c.minimum, c.maximum, c.default_value));
                         return out;
                     },
                     "The controls of a conditioned model as (name, minimum, maximum, default) tuples.")
        .def_prop_ro("in_size", &rtnt::Model::in_size)
        .def_prop_ro("out_size", &rtnt::Model::out_size)
        .def_prop_ro("max_block", &rtnt::Model::max_block)
        .def_prop_ro("num_layers", &rtnt::Model::num_layers)
        .def_prop_ro("macs_per_sample", &rtnt::Model::macs_per_sample)
        .def_prop_ro("receptive_field", &rtnt::Model::receptive_field);

    m.def("process_blocks", &process_blocks, "model"_a, "x"_a, "block"_a, "controls"_a = nb::none(),
          "Process x from the current state in blocks of `block` frames (the last shorter), looping in C++.");
    m.def("build_info", &build_info, "Compiler and vector ISA of this build.");
    m.def("clock_gaps", &clock_gaps, "seconds"_a, "threshold"_a = 1e-6,
          "Spin on the clock: (start, length) in seconds of every gap longer than threshold.");
    m.def("constant_work", &constant_work, "call_seconds"_a, "calls"_a,
          "Per-call seconds of a fixed L1 loop sized to take about call_seconds.");
    m.def("bench", &bench, "model"_a, "x"_a, "block"_a, "warmup"_a = 16, "controls"_a = nb::none(),
          "Time model.process over x block by block: (per-block seconds, total seconds, preemptions).");
}
