// Builds a Model from RTNeural's JSON format, checking every key, shape and value on the way.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "../activation/activation.hpp"
#include "../batchnorm/batchnorm.hpp"
#include "../biquad/biquad.hpp"
#include "../conv1d/conv1d.hpp"
#include "../dense/dense.hpp"
#include "../envelope_gain/envelope_gain.hpp"
#include "../film/film.hpp"
#include "../fir/fir.hpp"
#include "../gain/gain.hpp"
#include "../gru/gru.hpp"
#include "../json/json.hpp"
#include "../lstm/lstm.hpp"
#include "../nam/loader.hpp"
#include "../oversampling/oversampling.hpp"
#include "../parallel/parallel.hpp"
#include "../prelu/prelu.hpp"
#include "../waveshaper/waveshaper.hpp"
#include "controls.hpp"
#include "error.hpp"
#include "model.hpp"

namespace rtnt {

namespace detail {

using json::Type;
using json::Value;

inline std::string shape_str(const std::vector<long>& dims) {
    std::string s = "(";
    for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + (dims.size() == 1 ? ",)" : ")");
}

class LayerReader {
public:
    LayerReader(const Value& v, int index, MemoryBudget& budget)
        : v_(v), where_("layers[" + std::to_string(index) + "]"), budget_(budget) {}
    LayerReader(const Value& v, std::string where, MemoryBudget& budget) : v_(v), where_(std::move(where)), budget_(budget) {}

    /// A reader of `v`, a layer nested in this one (a parallel layer's branch), named `where() + suffix`.
    LayerReader nested(const Value& v, const std::string& suffix) const { return LayerReader(v, where_ + suffix, budget_); }
    const std::string& where() const noexcept { return where_; }

    [[noreturn]] void fail(const std::string& what) const { throw ModelError(where_ + ": " + what); }

    /// Counts `values` floats of weights or state against the model's memory budget.
    void charge(double values) const { budget_.charge(values, where_); }

    void set_type(const std::string& type) { where_ += " (" + type + ")"; }

    bool has(const char* key) const noexcept { return v_.find(key) != nullptr; }

    const Value& require(const char* key, Type type) const {
        const Value* m = v_.find(key);
        if (!m) fail(std::string("missing key '") + key + "'");
        if (m->type != type)
            fail(std::string("'") + key + "' must be " + json::type_name(type) + ", got " + json::type_name(m->type));
        return *m;
    }

    /// A whole number in [lo, hi]; `[n]` (RTNeural's one-element list) is accepted as n.
    int integer(const char* key, long lo, long hi) const {
        const Value* m = v_.find(key);
        if (!m) fail(std::string("missing key '") + key + "'");
        if (m->is_array() && m->items.size() == 1) m = &m->items[0];
        if (!m->is_number() || !std::isfinite(m->number) || m->number != std::floor(m->number))
            fail(std::string("'") + key + "' must be a whole number");
        if (m->number < double(lo) || m->number > double(hi))
            fail(std::string("'") + key + "' is " + number_str(m->number) + ", outside [" +
                 std::to_string(lo) + ", " + std::to_string(hi) + "]");
        return static_cast<int>(m->number);
    }

    /// The output size: the last entry of 'shape'.
    int out_size() const {
        const Value& s = require("shape", Type::Array);
        if (s.items.empty()) fail("'shape' is empty; its last entry must be the output size");
        const Value& last = s.items.back();
        if (!last.is_number() || last.number != std::floor(last.number))
            fail("the last entry of 'shape' must be the output size, a whole number");
        if (last.number < 1 || last.number > LoaderLimits::max_size)
            fail("output size " + number_str(last.number) +
                 " is outside [1, " + std::to_string(LoaderLimits::max_size) + "]");
        return static_cast<int>(last.number);
    }

    Activation activation() const {
        const Value* a = v_.find("activation");
        if (!a) return Activation::Identity;
        if (!a->is_string()) fail(std::string("'activation' must be a string, got ") + json::type_name(a->type));
        Activation act;
        if (!activation_from_name(a->string, act))
            fail("unknown activation '" + a->string + "' (supported: tanh, relu, sigmoid, softmax, elu, or \"\")");
        return act;
    }

    /// The 'weights' list, which must hold between lo and hi arrays.
    const Value& weights(std::size_t lo, std::size_t hi, const char* expected) const {
        const Value& w = require("weights", Type::Array);
        if (w.items.size() < lo || w.items.size() > hi)
            fail("'weights' holds " + std::to_string(w.items.size()) + " arrays, expected " + expected);
        return w;
    }

    /// Flattens weights[k], which must have exactly the shape `dims` and finite entries.
    std::vector<float> tensor(const Value& w, std::size_t k, const std::vector<long>& dims, const char* meaning) const {
        return values<float>(w, k, dims, meaning);
    }

    /// As tensor(), keeping the values as written (double precision; biquad coefficients).
    std::vector<double> doubles(const Value& w, std::size_t k, const std::vector<long>& dims, const char* meaning) const {
        return values<double>(w, k, dims, meaning);
    }

    /// A JSON key that must be absent or the empty activation: gray-box layers apply none.
    void no_activation() const {
        const Value* a = v_.find("activation");
        if (a && !(a->is_string() && a->string.empty()))
            fail("a gray-box layer takes no activation; 'activation' must be \"\" or absent");
    }

private:
    template <typename T>
    std::vector<T> values(const Value& w, std::size_t k, const std::vector<long>& dims, const char* meaning) const {
        const Value& t = w.items[k];
        const std::vector<long> actual = shape_of(t);
        const std::string name = "weights[" + std::to_string(k) + "]";
        if (actual != dims)
            fail(name + " has shape " + shape_str(actual) + ", expected " + shape_str(dims) + " " + meaning);
        std::vector<T> out;
        std::size_t total = 1;
        for (long d : dims) total *= static_cast<std::size_t>(d);
        charge(double(total) * (sizeof(T) / sizeof(float)));
        out.reserve(total);
        std::string path;
        flatten(t, dims, 0, name, path, out);
        return out;
    }

public:
    static std::vector<long> shape_of(const Value& t) {
        std::vector<long> dims;
        const Value* cur = &t;
        while (cur->is_array() && dims.size() < 8) {
            dims.push_back(static_cast<long>(cur->items.size()));
            if (cur->items.empty()) break;
            cur = &cur->items[0];
        }
        return dims;
    }

private:
    const Value& v_;
    std::string where_;
    MemoryBudget& budget_;

    template <typename T>
    void flatten(const Value& t, const std::vector<long>& dims, std::size_t depth, const std::string& name,
                 std::string& path, std::vector<T>& out) const {
        if (depth == dims.size()) {
            if (!t.is_number()) fail(name + path + " is " + json::type_name(t.type) + ", expected a number");
            const T f = static_cast<T>(t.number);
            if (!std::isfinite(f))
                fail(name + path + " is " + (std::isnan(t.number) ? "NaN" : "infinite or beyond float range") +
                     "; weights must be finite");
            out.push_back(f);
            return;
        }
        if (!t.is_array() || static_cast<long>(t.items.size()) != dims[depth])
            fail(name + path + " is ragged: expected " + std::to_string(dims[depth]) + " entries at depth " +
                 std::to_string(depth));
        const std::size_t len = path.size();
        for (std::size_t i = 0; i < t.items.size(); ++i) {
            path += "[" + std::to_string(i) + "]";
            flatten(t.items[i], dims, depth + 1, name, path, out);
            path.resize(len);
        }
    }
};

/// The value of the top-level 'rtnt_format' that allows the gray-box layer types (docs/graybox_format.md).
inline constexpr const char* kGrayBoxFormat = "graybox-1";

inline bool is_graybox_type(const std::string& type) {
    return type == "biquad" || type == "fir" || type == "waveshaper" || type == "gain" || type == "parallel";
}

/// A finite number member `key` of a JSON object `e`, or r.fail naming `where`.
inline double member_number(const LayerReader& r, const Value& e, const char* key, const std::string& where) {
    const Value* m = e.find(key);
    if (!m || !m->is_number() || !std::isfinite(m->number)) r.fail(where + " needs a finite number '" + key + "'");
    return m->number;
}

/// The 'controllers' of a gray-box layer (docs/graybox_format.md), checked against the model's K controls.
inline std::vector<Controller> read_controllers(const LayerReader& r, const std::string& type, int num_controls) {
    if (!r.has("controllers")) return {};
    const Value& list = r.require("controllers", Type::Array);
    if (!list.items.empty() && num_controls == 0)
        r.fail("has 'controllers' but the model lists no 'controls'; a controlled layer needs the knob inputs");
    const std::vector<std::string> names = type == "biquad"       ? std::vector<std::string>{"freq_hz", "q", "gain_db"}
                                           : type == "waveshaper" ? std::vector<std::string>{"drive_db", "bias", "gain_db"}
                                           : type == "gain"       ? std::vector<std::string>{"gain_db"}
                                                                  : std::vector<std::string>{};
    std::vector<Controller> out;
    for (std::size_t i = 0; i < list.items.size(); ++i) {
        const Value& e = list.items[i];
        const std::string where = "controllers[" + std::to_string(i) + "]";
        const Value* parameter = e.find("parameter");
        const auto it = parameter && parameter->is_string() ? std::find(names.begin(), names.end(), parameter->string)
                                                            : names.end();
        if (!e.is_object() || it == names.end()) r.fail(where + " must be an object naming a controllable 'parameter'");
        Controller c;
        c.parameter = static_cast<int>(it - names.begin());
        const Value* mapping = e.find("mapping");
        const std::string m = mapping && mapping->is_string() ? mapping->string : "";
        if (m == "sigmoid") c.mapping = ControlMapping::Sigmoid;
        else if (m == "log_sigmoid") c.mapping = ControlMapping::LogSigmoid;
        else if (m == "tanh") c.mapping = ControlMapping::Tanh;
        else r.fail(where + ": 'mapping' must be one of sigmoid, log_sigmoid, tanh");
        c.minimum = member_number(r, e, "minimum", where);
        c.maximum = member_number(r, e, "maximum", where);
        c.raw = member_number(r, e, "raw", where);
        if (!(c.minimum < c.maximum) || (c.mapping == ControlMapping::LogSigmoid && c.minimum <= 0.0))
            r.fail(where + " needs minimum < maximum (both > 0 for log_sigmoid)");
        const Value* w = e.find("weights");
        if (!w || !w->is_array() || static_cast<int>(w->items.size()) != num_controls)
            r.fail(where + " needs " + std::to_string(num_controls) + " weights (one per control)");
        for (const Value& v : w->items) {
            if (!v.is_number() || !std::isfinite(v.number)) r.fail(where + ": its weights must be finite numbers");
            c.weights.push_back(v.number);
        }
        if (type == "biquad") {
            const Value* section = e.find("section");
            if (!section || !section->is_number() || section->number != std::floor(section->number) || section->number < 0)
                r.fail(where + " of a biquad needs the integer 'section' it controls");
            c.section = static_cast<int>(section->number);
        }
        out.push_back(std::move(c));
    }
    return out;
}

/// The RBJ 'parameters' of a biquad layer whose sections `controllers` recompute (else empty).
inline std::vector<RbjSection> read_rbj_sections(const LayerReader& r, int n, const std::vector<Controller>& controllers) {
    if (controllers.empty()) return {};
    const Value& list = r.require("parameters", Type::Array);
    if (static_cast<int>(list.items.size()) != n)
        r.fail("a controlled biquad needs 'parameters' for its " + std::to_string(n) + " sections (kind, freq_hz, q, gain_db)");
    std::vector<RbjSection> sections(static_cast<std::size_t>(n));
    for (const Controller& c : controllers) {
        const std::string where = "controlled section " + std::to_string(c.section);
        if (c.section >= n) r.fail(where + " does not exist");
        const Value& p = list.items[static_cast<std::size_t>(c.section)];
        const Value* kind = p.find("kind");
        const std::string k = kind && kind->is_string() ? kind->string : "";
        RbjSection& s = sections[static_cast<std::size_t>(c.section)];
        if (k == "peaking") s.kind = BiquadKind::Peaking;
        else if (k == "low_shelf") s.kind = BiquadKind::LowShelf;
        else if (k == "high_shelf") s.kind = BiquadKind::HighShelf;
        else if (k == "lowpass") s.kind = BiquadKind::Lowpass;
        else if (k == "highpass") s.kind = BiquadKind::Highpass;
        else r.fail(where + " needs RBJ parameters with a kind in peaking, low_shelf, high_shelf, lowpass, highpass");
        s.freq_hz = member_number(r, p, "freq_hz", where);
        s.q = member_number(r, p, "q", where);
        s.gain_db = member_number(r, p, "gain_db", where);
        if (!(s.freq_hz > 0.0 && s.freq_hz < kBiquadSampleRate / 2 && s.q > 0.0))
            r.fail(where + " needs 0 < freq_hz < 24000 and q > 0");
    }
    return sections;
}

/// One gray-box layer (biquad, fir, waveshaper, gain): mono in and out, no activation; `num_controls` is the
/// model's K, which a layer's 'controllers' read.
inline std::unique_ptr<Layer> read_graybox_layer(const LayerReader& r, const std::string& type, int in,
                                                 const LoadOptions& options, int num_controls = 0) {
    if (in != 1 || r.out_size() != 1)
        r.fail("a gray-box layer is mono in and out, but its input has " + std::to_string(in) +
               " channels and 'shape' ends in " + std::to_string(r.out_size()));
    r.no_activation();
    const Value& w = r.weights(1, 1, "1");
    std::vector<Controller> controllers = read_controllers(r, type, num_controls);
    if (type == "biquad") {
        const int n = r.integer("sections", 1, LoaderLimits::max_biquad_sections);
        const std::vector<double> c = r.doubles(w, 0, {n, 5}, "(sections, 5) of b0, b1, b2, a1, a2");
        r.charge(4.0 * n);  // double state
        std::vector<BiquadCoefficients> sections;
        for (int k = 0; k < n; ++k) {
            const BiquadCoefficients s{c[5 * k], c[5 * k + 1], c[5 * k + 2], c[5 * k + 3], c[5 * k + 4]};
            if (!biquad_is_stable(s))
                r.fail("section " + std::to_string(k) + " is unstable (a1 = " + number_str(s.a1) + ", a2 = " +
                       number_str(s.a2) + "): its poles must lie inside the unit circle, |a2| < 1 and |a1| < 1 + a2");
            sections.push_back(s);
        }
        std::vector<RbjSection> rbj = read_rbj_sections(r, n, controllers);
        return std::make_unique<Biquads>(std::move(sections), std::move(controllers), std::move(rbj), num_controls);
    }
    if (type == "fir") {
        const int k = r.integer("taps", 1, LoaderLimits::max_fir_taps);
        std::vector<float> taps = r.tensor(w, 0, {k}, "(taps,)");
        FirMethod method = Fir::automatic(k);
        if (options.fir_form == LoadOptions::FirForm::Direct) method = FirMethod::Direct;
        if (options.fir_form == LoadOptions::FirForm::Partitioned) method = FirMethod::Partitioned;
        r.charge(method == FirMethod::Direct ? 3.0 * k : 7.0 * k + 1024.0);  // history (+ spectra, delay line)
        return std::make_unique<Fir>(taps, method);
    }
    if (type == "waveshaper") {
        const std::vector<float> v = r.tensor(w, 0, {3}, "(drive, bias, gain)");
        return std::make_unique<Waveshaper>(v[0], v[1], v[2], std::move(controllers), num_controls);
    }
    return std::make_unique<Gain>(r.tensor(w, 0, {1}, "(gain,)")[0], std::move(controllers), num_controls);
}

/// Layer types an oversampled run may hold: the memoryless ones.
inline bool is_memoryless_type(const std::string& type) {
    return type == "dense" || type == "time-distributed-dense" || type == "activation" || type == "waveshaper" ||
           type == "gain";
}

/// The `oversampling` object of a layer (docs/graybox_format.md): factor 2 or 4, `layers` (the run's length from
/// this layer, at most `remaining`), `taps`, and the `up` and `down` taps of that length.
struct OversamplingSpec {
    int factor = 0;
    int layers = 0;
    std::vector<float> up, down;
};

inline OversamplingSpec read_oversampling(const LayerReader& r, const Value& o, int remaining) {
    if (!o.is_object()) r.fail("'oversampling' must be an object with factor, layers, taps, up and down");
    auto whole = [&](const char* key, long lo, long hi) {
        const Value* m = o.find(key);
        if (!m || !m->is_number() || m->number != std::floor(m->number) || m->number < double(lo) || m->number > double(hi))
            r.fail(std::string("'oversampling.") + key + "' must be a whole number in [" + std::to_string(lo) + ", " +
                   std::to_string(hi) + "]");
        return static_cast<int>(m->number);
    };
    OversamplingSpec spec;
    const Value* f = o.find("factor");
    if (!f || !f->is_number() || (f->number != 2.0 && f->number != 4.0))
        r.fail("'oversampling.factor' must be 2 or 4");
    spec.factor = static_cast<int>(f->number);
    spec.layers = whole("layers", 1, remaining);
    const int taps = whole("taps", 1, LoaderLimits::max_oversampling_taps);
    for (const char* key : {"up", "down"}) {
        const Value* a = o.find(key);
        if (!a || !a->is_array() || static_cast<int>(a->items.size()) != taps)
            r.fail(std::string("'oversampling.") + key + "' must be a list of " + std::to_string(taps) + " numbers ('taps')");
        std::vector<float>& dst = key[0] == 'u' ? spec.up : spec.down;
        for (const Value& item : a->items) {
            const float v = item.is_number() ? static_cast<float>(item.number) : NAN;
            if (!std::isfinite(v)) r.fail(std::string("'oversampling.") + key + "' must hold finite numbers only");
            dst.push_back(v);
        }
    }
    r.charge(2.0 * taps);
    return spec;
}

inline std::unique_ptr<Layer> read_parallel(const LayerReader& r, int in, const LoadOptions& options, int depth);

inline std::unique_ptr<Layer> read_layer(const LayerReader& r, const std::string& type, int in,
                                         std::vector<std::unique_ptr<Layer>>& extra, bool graybox,
                                         const LoadOptions& options, int depth = 0, int num_controls = 0,
                                         std::unique_ptr<FilmEpilogue> film = nullptr) {
    if (film && type != "conv1d") r.fail("has a FiLM adaptor, but adaptors modulate conv1d layers only");
    if (is_graybox_type(type)) {
        if (!graybox)
            r.fail(std::string("is a gray-box layer type; the file needs the top-level \"rtnt_format\": \"") +
                   kGrayBoxFormat + "\" (docs/graybox_format.md)");
        if (type == "parallel") return read_parallel(r, in, options, depth + 1);
        return read_graybox_layer(r, type, in, options, num_controls);
    }
    const int out = r.out_size();
    const Activation act = r.activation();
    if (type == "dense" || type == "time-distributed-dense") {
        const Value& w = r.weights(1, 2, "1 or 2 (kernel, optional bias)");
        auto kernel = r.tensor(w, 0, {in, out}, "(in, out)");
        std::vector<float> bias;
        if (w.items.size() == 2) bias = r.tensor(w, 1, {out}, "(out,)");
        return std::make_unique<Dense>(in, out, kernel, bias, act);
    }
    if (type == "conv1d") {
        const int K = r.integer("kernel_size", 1, LoaderLimits::max_kernel);
        const int d = r.integer("dilation", 1, LoaderLimits::max_dilation);
        const int groups = r.has("groups") ? r.integer("groups", 1, LoaderLimits::max_size) : 1;
        if (in % groups != 0 || out % groups != 0)
            r.fail("groups=" + std::to_string(groups) + " must divide the input size " + std::to_string(in) +
                   " and the output size " + std::to_string(out));
        const long lookback = long(K - 1) * d;
        if (lookback > LoaderLimits::max_lookback || lookback * in > LoaderLimits::max_history_floats)
            r.fail("(kernel_size - 1) * dilation = " + std::to_string(lookback) + " samples of " + std::to_string(in) +
                   " channels is too much history (limit " + std::to_string(LoaderLimits::max_history_floats) + " values)");
        r.charge(double(lookback) * in);
        const Value& w = r.weights(1, 2, "1 or 2 (kernel, optional bias)");
        auto kernel = r.tensor(w, 0, {K, in / groups, out}, "(kernel_size, in/groups, out)");
        std::vector<float> bias;
        if (w.items.size() == 2) bias = r.tensor(w, 1, {out}, "(out,)");
        auto conv = std::make_unique<Conv1d>(in, out, K, d, groups, kernel, bias, act);
        if (film) {
            if (film->channels() != out)
                r.fail("has a FiLM adaptor of " + std::to_string(2 * film->channels()) + " outputs, expected 2 x " +
                       std::to_string(out) + " (gamma and beta per channel)");
            conv->set_epilogue(std::move(film));  // gamma * conv(x) + beta, then the activation
        }
        return conv;
    }
    if (type == "gru") {
        const Value& w = r.weights(3, 3, "3 (kernel, recurrent kernel, bias)");
        auto kernel = r.tensor(w, 0, {in, 3L * out}, "(in, 3 * units)");
        auto rec = r.tensor(w, 1, {out, 3L * out}, "(units, 3 * units)");
        auto bias = r.tensor(w, 2, {2, 3L * out}, "(2, 3 * units): only reset_after=True GRUs are supported");
        return std::make_unique<Gru>(in, out, kernel, rec, bias);
    }
    if (type == "lstm") {
        const Value& w = r.weights(3, 3, "3 (kernel, recurrent kernel, bias)");
        auto kernel = r.tensor(w, 0, {in, 4L * out}, "(in, 4 * units)");
        auto rec = r.tensor(w, 1, {out, 4L * out}, "(units, 4 * units)");
        auto bias = r.tensor(w, 2, {4L * out}, "(4 * units,)");
        return std::make_unique<Lstm>(in, out, kernel, rec, bias);
    }
    if (out != in) r.fail("output size " + std::to_string(out) + " differs from the input size " + std::to_string(in));
    std::unique_ptr<Layer> layer;
    if (type == "prelu") {
        const Value& w = r.weights(1, 1, "1 (alpha)");
        std::vector<long> dims = LayerReader::shape_of(w.items[0]);
        long count = 1;
        for (long d : dims) count *= d;
        if (count != in && count != 1)
            r.fail("weights[0] (alpha) has shape " + shape_str(dims) + ": it needs " + std::to_string(in) +
                   " values (one per channel) or 1 (shared)");
        layer = std::make_unique<PRelu>(in, r.tensor(w, 0, dims, "(alpha)"));
    } else if (type == "batchnorm") {
        const Value& eps = r.require("epsilon", Type::Number);
        if (!std::isfinite(eps.number) || eps.number < 0) r.fail("'epsilon' must be a finite number >= 0");
        const Value& w = r.weights(2, 4, "4 (gamma, beta, mean, variance) or 2 (mean, variance)");
        if (w.items.size() == 3) r.fail("'weights' holds 3 arrays, expected 4 (gamma, beta, mean, variance) or 2 (mean, variance)");
        const bool affine = w.items.size() == 4;
        std::vector<float> gamma, beta;
        if (affine) {
            gamma = r.tensor(w, 0, {in}, "(channels,) for gamma");
            beta = r.tensor(w, 1, {in}, "(channels,) for beta");
        }
        auto mean = r.tensor(w, affine ? 2 : 0, {in}, "(channels,) for the moving mean");
        auto var = r.tensor(w, affine ? 3 : 1, {in}, "(channels,) for the moving variance");
        for (int c = 0; c < in; ++c)
            if (!(var[c] + static_cast<float>(eps.number) > 0.0f))
                r.fail("variance + epsilon of channel " + std::to_string(c) + " is not positive");
        layer = std::make_unique<BatchNorm>(in, gamma, beta, mean, var, static_cast<float>(eps.number));
    } else if (type == "activation") {
        return std::make_unique<ActivationLayer>(in, act);
    } else {
        r.fail("unknown layer type (supported: dense, time-distributed-dense, conv1d, gru, lstm, prelu, batchnorm, activation; "
               "with \"rtnt_format\": \"graybox-1\" also biquad, fir, waveshaper, gain, parallel)");
    }
    if (act != Activation::Identity) extra.push_back(std::make_unique<ActivationLayer>(in, act));
    return layer;
}

/// Where a layer sits: outside an oversampled run, first in one, or later in one.
enum class Run { None, First, Later };

/// Reads the layer of reader `r` (plus its activation layer) onto `chain`. A layer in an oversampled run must be
/// memoryless, and only the run's first layer holds the `oversampling` object.
inline void read_one(LayerReader r, const Value& lv, int size, std::vector<std::unique_ptr<Layer>>& chain, bool graybox,
                     const LoadOptions& options, int depth, Run run, int num_controls) {
    if (!lv.is_object()) r.fail(std::string("expected an object, got ") + json::type_name(lv.type));
    const std::string type = r.require("type", Type::String).string;
    r.set_type(type);
    if (run == Run::Later && lv.find("oversampling")) r.fail("starts an oversampled run inside another one; runs cannot nest");
    if (run != Run::None && !is_memoryless_type(type))
        r.fail("cannot run oversampled: only memoryless layers (dense, time-distributed-dense, activation, waveshaper, gain) can");
    if (r.has("controllers") && (run != Run::None || depth > 0))
        r.fail("has 'controllers'; knob controllers reach top-level layers outside oversampled runs only");
    std::vector<std::unique_ptr<Layer>> extra;
    chain.push_back(read_layer(r, type, size, extra, graybox, options, depth, num_controls));
    for (auto& e : extra) chain.push_back(std::move(e));
}

/// Reads a list of layers (the file's, or a parallel branch's at nesting `depth`) onto `chain` from an input of
/// `size` channels; a layer with an `oversampling` object starts an `Oversampled` run of `layers` layers.
/// `reader_at(i)` names layer i in errors; `num_controls` is the model's K (0 in a branch). Returns the output size (`size` for an empty list).
template <class ReaderAt>
int read_chain(const std::vector<Value>& items, ReaderAt reader_at, int size, std::vector<std::unique_ptr<Layer>>& chain,
               bool graybox, const LoadOptions& options, int depth, int num_controls = 0) {
    const std::size_t count = items.size();
    for (std::size_t i = 0; i < count;) {
        const Value* over = items[i].is_object() ? items[i].find("oversampling") : nullptr;
        if (!over) {
            read_one(reader_at(i), items[i], size, chain, graybox, options, depth, Run::None, num_controls);
            size = chain.back()->out_size();
            ++i;
            continue;
        }
        LayerReader r = reader_at(i);
        if (!graybox)
            r.fail(std::string("has an 'oversampling' object; the file needs the top-level \"rtnt_format\": \"") +
                   kGrayBoxFormat + "\" (docs/graybox_format.md)");
        if (size != 1) r.fail("an oversampled run is mono in and out, but its input has " + std::to_string(size) + " channels");
        OversamplingSpec spec = read_oversampling(r, *over, static_cast<int>(count - i));
        std::vector<std::unique_ptr<Layer>> inner;
        int inner_size = size;
        for (int k = 0; k < spec.layers; ++k) {
            read_one(reader_at(i + k), items[i + k], inner_size, inner, graybox, options, depth,
                     k == 0 ? Run::First : Run::Later, num_controls);
            inner_size = inner.back()->out_size();
        }
        if (inner_size != 1)
            r.fail("its oversampled run of " + std::to_string(spec.layers) + " layers ends with " +
                   std::to_string(inner_size) + " channels; it must end mono");
        chain.push_back(std::make_unique<Oversampled>(spec.factor, std::move(spec.up), std::move(spec.down), std::move(inner)));
        size = 1;
        i += static_cast<std::size_t>(spec.layers);
    }
    return size;
}

/// A gray-box `parallel` layer: mono in and out, no weights of its own, and 'branches', a non-empty array of
/// branches, each an array of layers of any type read as top-level layers are ([] is the identity) that starts
/// from and ends in one channel. Errors name the nested layer, e.g. "layers[0] (parallel) branches[1][0] (gain)".
inline std::unique_ptr<Layer> read_parallel(const LayerReader& r, int in, const LoadOptions& options, int depth) {
    if (in != 1 || r.out_size() != 1)
        r.fail("a gray-box layer is mono in and out, but its input has " + std::to_string(in) +
               " channels and 'shape' ends in " + std::to_string(r.out_size()));
    if (depth > LoaderLimits::max_parallel_depth)
        r.fail("parallel layers nest at most " + std::to_string(LoaderLimits::max_parallel_depth) + " deep");
    r.no_activation();
    r.weights(0, 0, "0 (a parallel layer's weights are in its branches)");
    const Value& list = r.require("branches", Type::Array);
    if (list.items.empty()) r.fail("'branches' is empty; a parallel layer needs at least one branch ([] is the identity)");
    std::vector<Parallel::Branch> branches;
    for (std::size_t k = 0; k < list.items.size(); ++k) {
        const Value& bv = list.items[k];
        const std::string where = " branches[" + std::to_string(k) + "]";
        if (!bv.is_array())
            r.fail("'branches[" + std::to_string(k) + "]' must be an array of layers ([] for the identity), got " +
                   json::type_name(bv.type));
        Parallel::Branch branch;
        auto reader_at = [&](std::size_t j) { return r.nested(bv.items[j], where + "[" + std::to_string(j) + "]"); };
        const int size = read_chain(bv.items, reader_at, 1, branch, true, options, depth);
        if (size != 1)
            r.fail("'branches[" + std::to_string(k) + "]' ends in " + std::to_string(size) + " channels; every branch must end mono");
        branches.push_back(std::move(branch));
    }
    return std::make_unique<Parallel>(std::move(branches));
}

/// The value of the top-level 'rtnt_format' of a FiLM-conditioned model, and its first layer's type
/// (docs/film_format.md).
inline constexpr const char* kFilmFormat = "film-1";
inline constexpr const char* kFilmSplit = "film-split";

/// The conditioner of a film-1 model and, per JSON layer index, its adaptor number (-1: not modulated).
struct FilmPlan {
    std::unique_ptr<FilmConditioner> conditioner;
    std::vector<int> adaptor_of_layer;
};

/// One dense layer of the 'film' object: weights [kernel (in, out), bias (out,)]; an adaptor's out must be even.
inline FilmConditioner::Dense read_film_dense(const Value& v, const std::string& where, int in, MemoryBudget& budget,
                                              bool adaptor) {
    LayerReader r(v, where, budget);
    if (!v.is_object()) r.fail(std::string("must be an object, got ") + json::type_name(v.type));
    if (!adaptor) {
        if (r.require("type", Type::String).string != "dense") r.fail("'type' must be \"dense\"");
        if (r.activation() != Activation::Tanh) r.fail("'activation' must be \"tanh\" (the conditioning MLP's)");
    } else {
        r.require("layer", Type::Number);
    }
    const Value& w = r.weights(2, 2, "2 (kernel, bias)");
    const std::vector<long> dims = LayerReader::shape_of(w.items[0]);
    if (dims.size() != 2 || dims[0] != in || dims[1] < 1 || dims[1] > LoaderLimits::max_size || (adaptor && dims[1] % 2))
        r.fail("weights[0] has shape " + shape_str(dims) + ", expected (" + std::to_string(in) +
               (adaptor ? ", 2 x channels) (gamma rows, then beta rows)" : ", units)"));
    FilmConditioner::Dense d;
    d.in = in;
    d.out = static_cast<int>(dims[1]);
    d.kernel = r.tensor(w, 0, {in, d.out}, "(in, out)");
    d.bias = r.tensor(w, 1, {d.out}, "(out,)");
    return d;
}

/// The top-level 'film' object of a film-1 model with K controls and `num_layers` layers, checked.
inline FilmPlan read_film(const Value& doc, int num_controls, int num_layers, MemoryBudget& budget) {
    const Value* film = doc.find("film");
    if (!film)
        throw ModelError(std::string("'rtnt_format' is \"") + kFilmFormat +
                         "\" but the top-level 'film' object is missing; re-export the model (docs/film_format.md)");
    if (num_controls == 0)
        throw ModelError("a FiLM model needs 'controls' (K >= 1) and 'in_shape' ending in 1 + K; re-export the model");
    if (!film->is_object()) throw ModelError(std::string("'film' must be an object, got ") + json::type_name(film->type));
    const Value* mlp = film->find("mlp");
    const Value* adaptors = film->find("adaptors");
    if (!mlp || !mlp->is_array() || mlp->items.empty())
        throw ModelError("film.mlp must be a non-empty array of dense layers (the conditioning MLP)");
    if (!adaptors || !adaptors->is_array() || adaptors->items.empty())
        throw ModelError("film.adaptors must be a non-empty array of {layer, weights} (one per modulated conv1d)");
    std::vector<FilmConditioner::Dense> dense, adapt;
    int width = num_controls;
    for (std::size_t j = 0; j < mlp->items.size(); ++j) {
        dense.push_back(read_film_dense(mlp->items[j], "film.mlp[" + std::to_string(j) + "]", width, budget, false));
        width = dense.back().out;
    }
    FilmPlan plan;
    plan.adaptor_of_layer.assign(static_cast<std::size_t>(num_layers), -1);
    for (std::size_t j = 0; j < adaptors->items.size(); ++j) {
        const std::string where = "film.adaptors[" + std::to_string(j) + "]";
        adapt.push_back(read_film_dense(adaptors->items[j], where, width, budget, true));
        const int layer = LayerReader(adaptors->items[j], where, budget).integer("layer", 1, num_layers - 1);
        if (plan.adaptor_of_layer[layer] >= 0)
            throw ModelError(where + ": layer " + std::to_string(layer) + " already has an adaptor; one per conv1d layer");
        plan.adaptor_of_layer[layer] = static_cast<int>(j);
    }
    plan.conditioner = std::make_unique<FilmConditioner>(num_controls, std::move(dense), std::move(adapt));
    return plan;
}

inline constexpr const char* kEnvelopeGainFormat = "nam-envelope-gain-1";

/// Member `key` of the envelope_gain object: a finite number in [lo, hi].
inline double envelope_number(const json::Value& eg, const char* key, double lo, double hi) {
    const json::Value* v = eg.find(key);
    if (!v || !v->is_number() || !std::isfinite(v->number) || v->number < lo || v->number > hi)
        throw ModelError(std::string("'envelope_gain.") + key + "' must be a number in [" + number_str(lo) + ", " +
                         number_str(hi) + "]; re-export the model (docs/envelope_gain_format.md)");
    return v->number;
}

/// The EnvelopeGainSpec of the file's 'envelope_gain' object; unknown members are refused (a misspelt key would
/// otherwise fall back to a default silently).
inline EnvelopeGainSpec read_envelope_gain(const json::Value& doc) {
    const json::Value* eg = doc.find("envelope_gain");
    if (!eg || !eg->is_object())
        throw ModelError("'envelope_gain' is missing or not an object; re-export the model (docs/envelope_gain_format.md)");
    static const char* const known[] = {"attack_ms", "release_ms", "level_ms", "floor_db", "max_gain_db", "weights"};
    for (const std::string& key : eg->keys)
        if (std::none_of(std::begin(known), std::end(known), [&](const char* k) { return key == k; }))
            throw ModelError("'envelope_gain' has an unknown member '" + key +
                             "' (known: attack_ms, release_ms, level_ms, floor_db, max_gain_db, weights)");
    EnvelopeGainSpec s;
    s.attack_ms = envelope_number(*eg, "attack_ms", 0.01, 1000.0);
    s.release_ms = envelope_number(*eg, "release_ms", 0.1, 60000.0);
    s.level_ms = envelope_number(*eg, "level_ms", 0.1, 60000.0);
    s.floor_db = envelope_number(*eg, "floor_db", -160.0, -20.0);
    s.max_gain_db = envelope_number(*eg, "max_gain_db", 0.0, 40.0);
    const json::Value* w = eg->find("weights");
    if (!w || !w->is_array() || w->items.size() != 3)
        throw ModelError("'envelope_gain.weights' must be an array of 3 numbers (dB offset, per peak dB, per level dB)");
    for (std::size_t i = 0; i < 3; ++i) {
        const json::Value& v = w->items[i];
        if (!v.is_number() || !std::isfinite(v.number) || std::fabs(v.number) > 1000.0)
            throw ModelError("'envelope_gain.weights[" + std::to_string(i) + "]' must be a finite number in [-1000, 1000]");
        s.weights[i] = v.number;
    }
    return s;
}

/// An rtnt "nam-envelope-gain-1" file: the complete .nam under 'nam', then its EnvelopeGain stage.
inline Model load_envelope_gain(const json::Value& doc, const LoadOptions& options) {
    const json::Value* nam_doc = doc.find("nam");
    if (!nam_doc || !nam::is_nam(*nam_doc))
        throw ModelError("'nam' is missing or not a .nam model object ('architecture', 'config', 'weights'); "
                         "re-export the model (docs/envelope_gain_format.md)");
    const EnvelopeGainSpec spec = read_envelope_gain(doc);
    Model net = [&] {
        try {
            return nam::load(*nam_doc, options);
        } catch (const ModelError& e) {
            throw ModelError(std::string("'nam': ") + e.what());
        }
    }();
    if (net.in_size() != 1 || net.out_size() != 1)
        throw ModelError("'nam' must be a mono, unconditioned model: an envelope gain follows one output channel");
    if (!(net.info().sample_rate > 0.0))
        throw ModelError("'nam' declares no sample_rate; the envelope gain's time constants need it (48000)");
    std::string description = "rtnt nam-envelope-gain-1: " + net.info().description + ", then an envelope gain";
    const double sr = net.info().sample_rate;
    return std::move(net).followed_by(std::make_unique<EnvelopeGain>(spec, sr), std::move(description));
}

}  // namespace detail

/// Parses a model into a prepared Model: RTNeural JSON, or a NAM .nam file (recognised by its
/// content: a top-level object with 'architecture', 'config' and 'weights'). Throws ModelError
/// with a one-line message. For RTNeural JSON, the "activation" of a gru or lstm layer names its
/// internal cell activation and is not applied again, as in RTNeural; for every other layer type a
/// non-empty activation follows the layer. An RTNeural JSON model may list its controls (knobs)
/// under 'controls' (see ControlSpec); its 'in_shape' then ends in 1 + K. A file with "rtnt_format":
/// "nam-envelope-gain-1" is a .nam (under 'nam') followed by an EnvelopeGain (docs/envelope_gain_format.md).
inline Model load_model(std::string_view text, const LoadOptions& options = {}) {
    using detail::Type;
    if (text.size() > LoaderLimits::max_file_bytes)
        throw ModelError("the model file is " + detail::mib_str(double(text.size())) + ", more than the " +
                         detail::mib_str(double(LoaderLimits::max_file_bytes)) +
                         " a model file may be (NAM's A2 full is 0.6 MiB); is it a model file?");
    json::Value doc;
    try {
        doc = json::parse(text);
    } catch (const json::ParseError& e) {
        throw ModelError(e.what());
    }
    if (nam::is_nam(doc)) return nam::load(doc, options);
    if (const json::Value* format = doc.find("rtnt_format");
        format && format->is_string() && format->string == detail::kEnvelopeGainFormat)
        return detail::load_envelope_gain(doc, options);
    if (options.slim) throw ModelError("a slim value was given, but this is an RTNeural JSON model, not a slimmable .nam file");
    if (!doc.is_object())
        throw ModelError(std::string("the model must be a JSON object: RTNeural JSON with 'in_shape' and 'layers', or a .nam file "
                                     "with 'version', 'architecture', 'config' and 'weights'; got ") + json::type_name(doc.type));
    if (doc.find("architecture") || doc.find("config"))
        throw ModelError("the file looks like a .nam model but lacks 'architecture', 'config' or 'weights'; all three are required");
    const json::Value* in_shape = doc.find("in_shape");
    if (!in_shape || !in_shape->is_array() || in_shape->items.empty())
        throw ModelError("'in_shape' is missing or not a non-empty array; its last entry is the input size");
    const json::Value& in_last = in_shape->items.back();
    if (!in_last.is_number() || in_last.number != std::floor(in_last.number) || in_last.number < 1 ||
        in_last.number > LoaderLimits::max_size)
        throw ModelError("the last entry of 'in_shape' must be the input size, a whole number in [1, " +
                         std::to_string(LoaderLimits::max_size) + "]");
    const json::Value* layers = doc.find("layers");
    if (!layers || !layers->is_array()) throw ModelError("'layers' is missing or not an array");
    if (layers->items.empty()) throw ModelError("'layers' is empty; a model needs at least one layer");
    if (layers->items.size() > static_cast<std::size_t>(LoaderLimits::max_layers))
        throw ModelError("'layers' holds " + std::to_string(layers->items.size()) + " layers, more than the limit " +
                         std::to_string(LoaderLimits::max_layers));

    bool graybox = false, film = false;
    if (const json::Value* format = doc.find("rtnt_format")) {
        film = format->is_string() && format->string == detail::kFilmFormat;
        if (!film && (!format->is_string() || format->string != detail::kGrayBoxFormat))
            throw ModelError(std::string("'rtnt_format' must be \"") + detail::kGrayBoxFormat +
                             "\" (rtnt's gray-box JSON, docs/graybox_format.md) or \"" + detail::kFilmFormat +
                             "\" (FiLM, docs/film_format.md) or \"" + detail::kEnvelopeGainFormat +
                             "\" (a .nam with an envelope gain, docs/envelope_gain_format.md); this runtime reads no other version");
        graybox = !film;
    }
    if (!film && doc.find("film"))
        throw ModelError(std::string("the file has a 'film' object but no \"rtnt_format\": \"") + detail::kFilmFormat +
                         "\"; re-export the model (docs/film_format.md)");
    const int in_size = static_cast<int>(in_last.number);
    std::vector<ControlSpec> controls = detail::read_controls(doc, in_size);
    detail::MemoryBudget budget(options.memory_budget_bytes);
    std::vector<std::unique_ptr<Layer>> chain;
    if (film) {
        detail::FilmPlan plan =
            detail::read_film(doc, static_cast<int>(controls.size()), static_cast<int>(layers->items.size()), budget);
        FilmConditioner* conditioner = plan.conditioner.get();
        int size = in_size;
        for (std::size_t i = 0; i < layers->items.size(); ++i) {
            const json::Value& lv = layers->items[i];
            detail::LayerReader r(lv, static_cast<int>(i), budget);
            if (!lv.is_object()) r.fail(std::string("expected an object, got ") + json::type_name(lv.type));
            const std::string type = r.require("type", Type::String).string;
            r.set_type(type);
            if ((type == detail::kFilmSplit) != (film && i == 0))
                r.fail(std::string("a FiLM model (\"rtnt_format\": \"") + detail::kFilmFormat + "\") starts with one '" +
                       detail::kFilmSplit + "' layer, and only it");
            if (film && i == 0) {
                if (r.out_size() != 1) r.fail("'film-split' passes the audio channel on: its 'shape' must end in 1");
                chain.push_back(std::make_unique<FilmSplit>(std::move(plan.conditioner)));
                size = 1;
                continue;
            }
            std::unique_ptr<FilmEpilogue> modulation;
            if (film && plan.adaptor_of_layer[i] >= 0)
                modulation = std::make_unique<FilmEpilogue>(conditioner, static_cast<std::size_t>(plan.adaptor_of_layer[i]));
            std::vector<std::unique_ptr<Layer>> extra;
            chain.push_back(detail::read_layer(r, type, size, extra, graybox, options, 0, 0, std::move(modulation)));
            for (auto& e : extra) chain.push_back(std::move(e));
            size = chain.back()->out_size();
        }
    } else {
        // A gray-box chain runs on the audio (channel 0) alone; its controllers read the control channels 1..K.
        auto reader_at = [&](std::size_t i) { return detail::LayerReader(layers->items[i], static_cast<int>(i), budget); };
        detail::read_chain(layers->items, reader_at, graybox ? 1 : in_size, chain, graybox, options, 0,
                           static_cast<int>(controls.size()));
    }
    ModelInfo info;
    info.description = std::string(graybox ? "rtnt gray-box JSON: " : film ? "rtnt FiLM JSON: " : "RTNeural JSON: ") +
                       std::to_string(layers->items.size()) + " layers";
    if (!controls.empty()) info.description += ", " + std::to_string(controls.size()) + " control(s)";
    info.controls = std::move(controls);
    return Model(in_size, std::move(chain), std::move(info));
}

/// Reads and loads a model file (RTNeural JSON or .nam); a file that cannot be read is a
/// ModelError too.
inline Model load_model_file(const std::string& path, const LoadOptions& options = {}) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) throw ModelError("cannot open model file '" + path + "'");
    const std::streamoff size = f.tellg();
    if (size > std::streamoff(LoaderLimits::max_file_bytes))
        throw ModelError("'" + path + "' is " + detail::mib_str(double(size)) + ", more than the " +
                         detail::mib_str(double(LoaderLimits::max_file_bytes)) +
                         " a model file may be (NAM's A2 full is 0.6 MiB); is it a model file?");
    f.seekg(0);
    std::ostringstream ss;
    ss << f.rdbuf();
    return load_model(ss.str(), options);
}

}  // namespace rtnt
