// Builds a Model from a Neural Amp Modeler .nam file (WaveNet, LSTM, SlimmableContainer), checking
// every key, shape and the weight count against the config on the way. The layout and the rules
// followed are those of NAM Core (shared/conformance/nam/FORMAT.md).
#pragma once

#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../dense/dense.hpp"
#include "../json/json.hpp"
#include "../lstm/lstm.hpp"
#include "../model/controls.hpp"
#include "../model/error.hpp"
#include "../model/model.hpp"
#include "../wavenet/spec.hpp"
#include "../wavenet/wavenet.hpp"
#include "weights.hpp"

namespace rtnt {

namespace nam {

/// The newest file version this reader follows (NAM Core daae2d0: 0.7.x loads, 0.8.0 does not).
constexpr int kLatestMajor = 0, kLatestMinor = 7;
/// The oldest version NAM Core reads.
constexpr int kOldestMajor = 0, kOldestMinor = 5;

/// True when `doc` is a .nam model: an object with 'architecture', 'config' and 'weights'.
inline bool is_nam(const json::Value& doc) noexcept {
    return doc.is_object() && doc.find("architecture") && doc.find("config") && doc.find("weights");
}

namespace detail {

using rtnt::detail::MemoryBudget;
using json::Type;
using json::Value;

/// A JSON value with its path in the file ("config.layers[0].dilations"), for messages.
class Node {
public:
    Node(const Value& v, std::string path) : v_(&v), path_(std::move(path)) {}

    const Value& value() const noexcept { return *v_; }
    const std::string& path() const noexcept { return path_; }

    [[noreturn]] void fail(const std::string& what) const {
        throw ModelError((path_.empty() ? std::string("the file") : path_) + ": " + what);
    }

    bool has(const char* key) const noexcept { return v_->find(key) != nullptr; }
    /// The member, or nothing when it is absent or null.
    std::optional<Node> get(const char* key) const {
        const Value* m = v_->find(key);
        if (!m || m->type == Type::Null) return std::nullopt;
        return Node(*m, child(key));
    }
    Node at(const char* key) const {
        const Value* m = v_->find(key);
        if (!m) fail(std::string("missing key '") + key + "'");
        return Node(*m, child(key));
    }
    Node item(std::size_t i) const { return Node(v_->items[i], path_ + "[" + std::to_string(i) + "]"); }
    std::size_t size() const noexcept { return v_->items.size(); }

    void expect(Type t) const {
        if (v_->type != t) fail(std::string("must be ") + json::type_name(t) + ", got " + json::type_name(v_->type));
    }
    const Node& object() const { return expect(Type::Object), *this; }
    const Node& array() const { return expect(Type::Array), *this; }
    const std::string& string() const { return expect(Type::String), v_->string; }
    bool boolean() const { return expect(Type::Bool), v_->boolean; }

    double number() const {
        expect(Type::Number);
        if (!std::isfinite(v_->number)) fail("must be a finite number");
        return v_->number;
    }
    int integer(long lo, long hi) const {
        const double x = number();
        if (x != std::floor(x)) fail("must be a whole number, got " + rtnt::detail::number_str(x));
        if (x < double(lo) || x > double(hi))
            fail("is " + rtnt::detail::number_str(x) + ", outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
        return static_cast<int>(x);
    }
    int integer(const char* key, long lo, long hi) const { return at(key).integer(lo, hi); }
    int integer_or(const char* key, int fallback, long lo, long hi) const {
        const auto m = get(key);
        return m ? m->integer(lo, hi) : fallback;
    }

private:
    std::string child(const char* key) const { return path_.empty() ? std::string(key) : path_ + "." + key; }

    const Value* v_;
    std::string path_;
};

/// Checks the 'version' string against NAM Core's rule: MAJOR.MINOR.PATCH, at least 0.5.0, and
/// not a newer major or minor than 0.7 (a newer patch loads). Returns it.
inline std::string check_version(const Node& doc) {
    const Node v = doc.at("version");
    const std::string& s = v.string();
    long part[3] = {0, 0, 0};
    std::size_t i = 0;
    for (int k = 0; k < 3; ++k) {
        const std::size_t start = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9' && i - start < 9) part[k] = part[k] * 10 + (s[i++] - '0');
        const bool separator_ok = k < 2 ? (i < s.size() && s[i] == '.') : i == s.size();
        if (i == start || !separator_ok)
            v.fail("'" + s + "' is not a version of the form MAJOR.MINOR.PATCH (e.g. \"0.5.4\")");
        if (k < 2) ++i;
    }
    const bool too_old = part[0] < kOldestMajor || (part[0] == kOldestMajor && part[1] < kOldestMinor);
    if (too_old)
        v.fail("version " + s + " is older than " + std::to_string(kOldestMajor) + "." + std::to_string(kOldestMinor) +
               ".0, the oldest NAM Core reads; re-export the model with a current NAM trainer");
    const bool too_new = part[0] > kLatestMajor || (part[0] == kLatestMajor && part[1] > kLatestMinor);
    if (too_new)
        v.fail("version " + s + " is newer than " + std::to_string(kLatestMajor) + "." + std::to_string(kLatestMinor) +
               ".x, the newest this reader follows; update rtnt");
    return s;
}

/// The flat weight list as float32, every entry a finite number.
inline std::vector<float> read_weights(const Node& doc) {
    const Node w = doc.at("weights");
    w.array();
    std::vector<float> out;
    out.reserve(w.size());
    for (std::size_t i = 0; i < w.size(); ++i) {
        const Value& x = w.value().items[i];
        if (!x.is_number()) w.item(i).fail(std::string("is ") + json::type_name(x.type) + ", expected a number");
        const float f = static_cast<float>(x.number);
        if (!std::isfinite(f))
            w.item(i).fail(std::string("is ") + (std::isnan(x.number) ? "NaN" : "infinite or beyond float range") +
                           "; weights must be finite");
        out.push_back(f);
    }
    return out;
}

inline void check_weight_count(const Node& doc, const std::vector<float>& w, long expected, const std::string& breakdown) {
    if (static_cast<long>(w.size()) != expected)
        doc.at("weights").fail("holds " + std::to_string(w.size()) + " values, but the config needs " + std::to_string(expected) +
                               " (" + breakdown + "); the file is truncated or does not match its config");
}

/// The declared sample rate, or -1 when the file has none (as NAM Core reports it).
inline double read_sample_rate(const Node& doc) {
    const auto sr = doc.get("sample_rate");
    if (!sr) return -1.0;
    const double r = sr->number();
    if (!(r > 0.0 && r <= 1e7)) sr->fail("is " + rtnt::detail::number_str(r) + "; a sample rate must be in (0, 1e7] Hz");
    return r;
}

// ----------------------------------------------------------------------------------- WaveNet

inline wavenet::Activation read_activation(const Node& n) {
    using wavenet::ActKind;
    wavenet::Activation a;
    const bool is_object = n.value().is_object();
    if (!is_object && !n.value().is_string())
        n.fail(std::string("must be an activation name or an object with 'type', got ") + json::type_name(n.value().type));
    const std::string name = is_object ? n.at("type").string() : n.value().string;
    if (name == "Tanh") a.kind = ActKind::Tanh;
    else if (name == "Hardtanh") a.kind = ActKind::Hardtanh;
    else if (name == "Fasttanh") a.kind = ActKind::Fasttanh;
    else if (name == "ReLU") a.kind = ActKind::Relu;
    else if (name == "LeakyReLU") a.kind = ActKind::LeakyRelu;
    else if (name == "PReLU") a.kind = ActKind::Prelu;
    else if (name == "Sigmoid") a.kind = ActKind::Sigmoid;
    else if (name == "SiLU") a.kind = ActKind::Silu;
    else if (name == "Hardswish") a.kind = ActKind::Hardswish;
    else if (name == "LeakyHardtanh" || name == "LeakyHardTanh") a.kind = ActKind::LeakyHardtanh;
    else if (name == "Softsign") a.kind = ActKind::Softsign;
    else
        n.fail("unknown activation '" + name +
               "' (NAM names: Tanh, Hardtanh, Fasttanh, ReLU, LeakyReLU, PReLU, Sigmoid, SiLU, Hardswish, LeakyHardtanh, Softsign)");
    if (!is_object) return a;
    auto param = [&](const char* key, float fallback) {
        const auto m = n.get(key);
        return m ? static_cast<float>(m->number()) : fallback;
    };
    if (a.kind == ActKind::LeakyRelu || a.kind == ActKind::Prelu) a.slope = param("negative_slope", 0.01f);
    if (a.kind == ActKind::Prelu) {
        if (const auto slopes = n.get("negative_slopes")) {
            slopes->array();
            if (slopes->size() == 0) slopes->fail("is empty; give one slope per channel");
            a.slopes.resize(slopes->size());
            for (std::size_t c = 0; c < slopes->size(); ++c) a.slopes[c] = static_cast<float>(slopes->item(c).number());
        }
    }
    if (a.kind == ActKind::LeakyHardtanh) {
        a.min_val = param("min_val", -1.0f);
        a.max_val = param("max_val", 1.0f);
        a.min_slope = param("min_slope", 0.01f);
        a.max_slope = param("max_slope", 0.01f);
        if (!(a.min_val <= a.max_val)) n.fail("min_val must not exceed max_val");
    }
    return a;
}

/// A per-layer setting given once for every layer or as an array with one entry per layer.
template <typename F>
inline auto per_layer(const Node& n, std::size_t layers, F read) -> std::vector<decltype(read(n))> {
    std::vector<decltype(read(n))> out;
    if (n.value().is_array()) {
        if (n.size() != layers)
            n.fail("holds " + std::to_string(n.size()) + " entries, but 'dilations' has " + std::to_string(layers) +
                   " layers; give one entry per layer or a single value");
        for (std::size_t l = 0; l < layers; ++l) out.push_back(read(n.item(l)));
    } else {
        out.assign(layers, read(n));
    }
    return out;
}

inline wavenet::Gating read_gating(const Node& n) {
    const std::string& s = n.string();
    if (s == "none") return wavenet::Gating::None;
    if (s == "gated") return wavenet::Gating::Gated;
    if (s == "blended") return wavenet::Gating::Blended;
    n.fail("unknown gating mode '" + s + "' (expected \"none\", \"gated\" or \"blended\")");
}

/// Refuses the valid NAM features this runtime does not run, by name.
inline void refuse_unsupported(const Node& la) {
    if (const auto s = la.get("slimmable"))
        s->fail("slimmable WaveNets (SlimmableWavenet) are not supported by rtnt; export the slim size you want as its own WaveNet");
}

/// A FiLM switch as NAM Core reads it: absent, null or false is off; an object is on unless its
/// 'active' is false, with 'shift' (default true) and 'groups' (default 1).
inline wavenet::FilmSpec read_film(const Node& la, const char* key) {
    wavenet::FilmSpec f;
    const auto n = la.get(key);
    if (!n || (n->value().type == Type::Bool && !n->value().boolean)) return f;
    if (!n->value().is_object()) n->fail(std::string("must be false or a FiLM object {active, shift, groups}, got ") + json::type_name(n->value().type));
    const auto active = n->get("active");
    f.active = !active || active->boolean();
    if (const auto shift = n->get("shift")) f.shift = shift->boolean();
    f.groups = n->integer_or("groups", 1, 1, LoaderLimits::max_size);
    return f;
}

inline wavenet::ArraySpec read_layer_array(const Node& la) {
    using wavenet::Gating;
    la.object();
    refuse_unsupported(la);
    const int max = LoaderLimits::max_size;
    wavenet::ArraySpec s;
    s.input_size = la.integer("input_size", 1, max);
    s.condition_size = la.integer("condition_size", 1, max);
    s.channels = la.integer("channels", 1, max);
    s.bottleneck = la.integer_or("bottleneck", s.channels, 1, max);
    s.groups_input = la.integer_or("groups_input", 1, 1, max);
    s.groups_mixin = la.integer_or("groups_input_mixin", 1, 1, max);
    for (int k = 0; k < wavenet::kFilmKeys; ++k) s.films[k] = read_film(la, wavenet::kFilmNames[k]);
    if (const auto l1 = la.get("layer1x1")) {
        l1->object();
        s.layer1x1 = l1->at("active").boolean();
        s.layer1x1_groups = l1->integer("groups", 1, max);
    }
    s.head1x1_out = s.channels;
    if (const auto h1 = la.get("head1x1")) {
        h1->object();
        s.head1x1 = h1->at("active").boolean();
        s.head1x1_out = h1->integer("out_channels", 1, max);
        s.head1x1_groups = h1->integer("groups", 1, max);
    }
    if (const auto head = la.get("head")) {
        head->object();
        s.head_out = head->integer("out_channels", 1, max);
        s.head_kernel = head->integer("kernel_size", 1, LoaderLimits::max_kernel);
        s.head_bias = head->at("bias").boolean();
        s.head_dilation = head->integer_or("head_dilation", 1, 1, LoaderLimits::max_dilation);
    } else if (la.has("head_size")) {
        s.head_out = la.integer("head_size", 1, max);
        s.head_bias = la.at("head_bias").boolean();
    } else {
        la.fail("needs a 'head' object {out_channels, kernel_size, bias} or the legacy 'head_size' and 'head_bias'");
    }

    const Node dil = la.at("dilations");
    dil.array();
    const std::size_t L = dil.size();
    if (L == 0) dil.fail("is empty; a layer array needs at least one layer");
    if (L > static_cast<std::size_t>(LoaderLimits::max_layers))
        dil.fail("holds " + std::to_string(L) + " layers, more than the limit " + std::to_string(LoaderLimits::max_layers));
    const bool has_k = la.has("kernel_size"), has_ks = la.has("kernel_sizes");
    if (has_k && has_ks) la.fail("gives both 'kernel_size' and 'kernel_sizes'; give only one");
    if (!has_k && !has_ks) la.fail("needs 'kernel_size' (one for all layers) or 'kernel_sizes' (one per layer)");
    std::vector<int> kernels;
    if (has_ks) {
        const Node ks = la.at("kernel_sizes");
        ks.array();
        if (ks.size() != L)
            ks.fail("holds " + std::to_string(ks.size()) + " entries, but 'dilations' has " + std::to_string(L));
        for (std::size_t l = 0; l < L; ++l) kernels.push_back(ks.item(l).integer(1, LoaderLimits::max_kernel));
    } else {
        kernels.assign(L, la.integer("kernel_size", 1, LoaderLimits::max_kernel));
    }
    const auto acts = per_layer(la.at("activation"), L, read_activation);
    std::vector<Gating> gating(L, Gating::None);
    if (const auto gm = la.get("gating_mode")) gating = per_layer(*gm, L, read_gating);
    else if (const auto g = la.get("gated")) gating.assign(L, g->boolean() ? Gating::Gated : Gating::None);
    std::vector<std::optional<Node>> secondary(L);
    if (const auto sa = la.get("secondary_activation")) {
        if (sa->value().is_array() && sa->size() != L)
            sa->fail("holds " + std::to_string(sa->size()) + " entries, but 'dilations' has " + std::to_string(L));
        for (std::size_t l = 0; l < L; ++l) secondary[l] = sa->value().is_array() ? sa->item(l) : *sa;
    }

    for (std::size_t l = 0; l < L; ++l) {
        wavenet::LayerSpec ls;
        ls.kernel_size = kernels[l];
        ls.dilation = dil.item(l).integer(1, LoaderLimits::max_dilation);
        ls.activation = acts[l];
        ls.gating = gating[l];
        if (ls.gating != Gating::None) {
            const bool given = secondary[l] && secondary[l]->value().type != Type::Null;
            if (given) ls.secondary = read_activation(*secondary[l]);
            else ls.secondary.kind = wavenet::ActKind::Sigmoid;  // NAM Core's default gate
        }
        const long lookback = long(ls.kernel_size - 1) * ls.dilation;
        if (lookback > LoaderLimits::max_lookback || lookback * padded(s.channels) > LoaderLimits::max_history_floats)
            dil.item(l).fail("(kernel_size - 1) * dilation = " + std::to_string(lookback) + " samples of " +
                             std::to_string(s.channels) + " channels is too much history (limit " +
                             std::to_string(LoaderLimits::max_history_floats) + " values)");
        s.layers.push_back(std::move(ls));
    }
    return s;
}

/// Shape rules between the fields of one array, and the PReLU slope counts.
inline void check_layer_array(const Node& la, const wavenet::ArraySpec& s) {
    auto divides = [&](int g, int a, int b, const char* what) {
        if (a % g != 0 || b % g != 0)
            la.fail(std::string(what) + " groups=" + std::to_string(g) + " must divide its input (" + std::to_string(a) +
                    ") and output (" + std::to_string(b) + ") channels");
    };
    if (!s.layer1x1 && s.bottleneck != s.channels)
        la.fail("'layer1x1' is inactive, so 'bottleneck' (" + std::to_string(s.bottleneck) + ") must equal 'channels' (" +
                std::to_string(s.channels) + ")");
    if (s.layer1x1) divides(s.layer1x1_groups, s.bottleneck, s.channels, "layer1x1");
    if (s.head1x1) divides(s.head1x1_groups, s.bottleneck, s.head1x1_out, "head1x1");
    for (std::size_t l = 0; l < s.layers.size(); ++l) {
        const wavenet::LayerSpec& ls = s.layers[l];
        const int z = s.conv_out(ls);
        divides(s.groups_input, s.channels, z, ("layer " + std::to_string(l) + " conv").c_str());
        divides(s.groups_mixin, s.condition_size, z, ("layer " + std::to_string(l) + " input mix-in").c_str());
        for (int k = 0; k < wavenet::kFilmKeys; ++k)
            if (s.films[k].active)
                divides(s.films[k].groups, s.condition_size, s.film_rows(static_cast<wavenet::FilmKey>(k), ls),
                        ("layer " + std::to_string(l) + " " + wavenet::kFilmNames[k]).c_str());
        for (const wavenet::Activation* a : {&ls.activation, &ls.secondary})
            if (!a->slopes.empty() && a->slopes.size() != static_cast<std::size_t>(s.bottleneck))
                la.fail("layer " + std::to_string(l) + ": PReLU has " + std::to_string(a->slopes.size()) +
                        " negative_slopes, but the activation acts on bottleneck = " + std::to_string(s.bottleneck) + " channels");
    }
}

inline void pad_prelu_slopes(wavenet::ArraySpec& s) {
    for (auto& ls : s.layers)
        for (wavenet::Activation* a : {&ls.activation, &ls.secondary})
            if (!a->slopes.empty()) a->slopes.resize(static_cast<std::size_t>(padded(s.bottleneck)), 0.0f);
}

inline Model load_wavenet(const Node& doc, const std::string& version, MemoryBudget& budget) {
    const Node config = doc.at("config");
    config.object();
    if (const auto c = config.get("condition_dsp"))
        c->fail("a condition_dsp (a nested model that computes the condition) is not supported by rtnt");
    if (const auto h = config.get("head"))
        h->fail("a post-stack 'head' is not supported by rtnt; only files with \"head\": null load");
    const int in_channels = config.integer_or("in_channels", 1, 1, LoaderLimits::max_size);
    std::vector<ControlSpec> controls = rtnt::detail::read_controls(doc.value(), in_channels, "config 'in_channels' is");
    if (in_channels != 1 + static_cast<int>(controls.size()))
        config.at("in_channels").fail("is " + std::to_string(in_channels) +
                                      " but the file lists no 'controls'; rtnt runs a multi-channel .nam as a knob-conditioned "
                                      "model (channel 0 the audio, 1..K the knobs of a top-level 'controls' list)");
    config.at("head_scale").number();  // NAM Core requires it, then uses the last weight instead
    const Node layers = config.at("layers");
    layers.array();
    if (layers.size() == 0) layers.fail("is empty; a WaveNet needs at least one layer array");

    wavenet::WaveNetSpec spec;
    std::size_t total_layers = 0;
    for (std::size_t i = 0; i < layers.size(); ++i) {
        const Node la = layers.item(i);
        wavenet::ArraySpec s = read_layer_array(la);
        check_layer_array(la, s);
        total_layers += s.layers.size();
        if (total_layers > static_cast<std::size_t>(LoaderLimits::max_layers))
            la.fail("the model has more than " + std::to_string(LoaderLimits::max_layers) + " layers");
        if (s.condition_size != in_channels)
            la.at("condition_size").fail("is " + std::to_string(s.condition_size) + ", but without a condition_dsp the condition is the input (" +
                                         std::to_string(in_channels) + " channel(s), config 'in_channels')");
        if (i == 0 && s.input_size != in_channels)
            la.at("input_size").fail("is " + std::to_string(s.input_size) + "; the first layer array reads the input (" +
                                     std::to_string(in_channels) + " channel(s), config 'in_channels')");
        if (i > 0) {
            const wavenet::ArraySpec& prev = spec.arrays.back();
            if (s.input_size != prev.channels)
                la.at("input_size").fail("is " + std::to_string(s.input_size) + ", but the previous array's residual stream has " +
                                         std::to_string(prev.channels) + " channels");
            if (prev.head_out != s.skip_width())
                la.fail("the previous array's head outputs " + std::to_string(prev.head_out) +
                        " channels, but this array's skip outputs have " + std::to_string(s.skip_width()) +
                        " (head1x1.out_channels if active, else bottleneck); they must match");
        }
        pad_prelu_slopes(s);
        double history = 0.0;
        for (const auto& l : s.layers) history += double(l.kernel_size - 1) * l.dilation * padded(s.channels);
        budget.charge(history + double(s.weight_count()), la.path());
        spec.arrays.push_back(std::move(s));
    }
    if (spec.arrays.back().head_out != 1)
        layers.item(layers.size() - 1).fail("the last array's head has " + std::to_string(spec.arrays.back().head_out) +
                                            " output channels; rtnt runs mono models (1 output)");
    const std::vector<float> weights = read_weights(doc);
    std::string breakdown;
    for (std::size_t i = 0; i < spec.arrays.size(); ++i)
        breakdown += (i ? " + " : "") + std::to_string(spec.arrays[i].weight_count());
    check_weight_count(doc, weights, spec.weight_count(),
                       breakdown + " for the " + std::to_string(spec.arrays.size()) + " layer array(s) + 1 head_scale");

    ModelInfo info;
    info.sample_rate = read_sample_rate(doc);
    info.prewarm_samples = 1 + spec.lookback();
    info.controls = std::move(controls);
    info.description = "NAM " + version + " WaveNet: " + std::to_string(spec.arrays.size()) + " layer array(s), " +
                       std::to_string(total_layers) + " layers, channels";
    for (const auto& a : spec.arrays) info.description += " " + std::to_string(a.channels);
    std::vector<std::unique_ptr<Layer>> chain;
    std::vector<float> rest_frame(1, 0.0f);  // what reset() prewarms on: silence, every knob at its default
    for (const ControlSpec& c : info.controls) rest_frame.push_back(static_cast<float>(c.default_value));
    auto net = std::make_unique<wavenet::WaveNet>(spec, weights, std::move(rest_frame));
    info.kernels = net->kernels();
    chain.push_back(std::move(net));
    return Model(in_channels, std::move(chain), std::move(info));
}

// -------------------------------------------------------------------------------------- LSTM

inline Model load_lstm(const Node& doc, const std::string& version, MemoryBudget& budget) {
    const Node config = doc.at("config");
    config.object();
    const int in = config.integer("input_size", 1, LoaderLimits::max_size);
    if (in != 1) config.at("input_size").fail("is " + std::to_string(in) + "; rtnt runs mono models (input_size 1)");
    const int H = config.integer("hidden_size", 1, LoaderLimits::max_size / 4);
    const int layers = config.integer("num_layers", 1, LoaderLimits::max_layers);
    long expected = 0;
    for (int l = 0; l < layers; ++l) expected += 4L * H * ((l == 0 ? in : H) + H) + 4L * H + 2L * H;
    expected += H + 1;
    budget.charge(double(expected) + 2.0 * layers * H, config.path());
    const std::vector<float> weights = read_weights(doc);
    check_weight_count(doc, weights, expected,
                       std::to_string(layers) + " layer(s) of W (4H x (in + H)), b, h0, c0, then the head's H weights and bias");

    WeightCursor wc(weights);
    std::vector<std::unique_ptr<Layer>> chain;
    for (int l = 0; l < layers; ++l) {
        const int I = l == 0 ? in : H, G = 4 * H;
        // NAM: W is (4H, I + H) row-major acting on [x; h]; rtnt::Lstm takes kernel (I, 4H) and recurrent (H, 4H).
        std::vector<float> kernel(static_cast<std::size_t>(I) * G), recurrent(static_cast<std::size_t>(H) * G), bias(G);
        for (int j = 0; j < G; ++j) {
            for (int i = 0; i < I; ++i) kernel[static_cast<std::size_t>(i) * G + j] = wc.next();
            for (int u = 0; u < H; ++u) recurrent[static_cast<std::size_t>(u) * G + j] = wc.next();
        }
        for (float& b : bias) b = wc.next();
        std::vector<float> h0(H), c0(H);
        for (float& v : h0) v = wc.next();
        for (float& v : c0) v = wc.next();
        auto lstm = std::make_unique<Lstm>(I, H, kernel, recurrent, bias);
        lstm->set_initial_state(h0, c0);
        chain.push_back(std::move(lstm));
    }
    std::vector<float> head(H), head_bias(1);
    for (float& v : head) v = wc.next();
    head_bias[0] = wc.next();
    chain.push_back(std::make_unique<Dense>(H, 1, head, head_bias, rtnt::Activation::Identity));

    ModelInfo info;
    info.sample_rate = read_sample_rate(doc);
    // NAM Core prewarms an LSTM with half a second of silence.
    info.prewarm_samples = std::lround(0.5 * (info.sample_rate > 0 ? info.sample_rate : 48000.0));
    info.description = "NAM " + version + " LSTM: " + std::to_string(layers) + " layer(s), hidden size " + std::to_string(H);
    return Model(1, std::move(chain), std::move(info));
}

// ------------------------------------------------------------------------------- containers

inline Model load_node(const Node& doc, const LoadOptions& options, MemoryBudget& budget, int depth);

inline Model load_container(const Node& doc, const std::string& version, const LoadOptions& options,
                            MemoryBudget& budget, int depth) {
    const Node config = doc.at("config");
    config.object();
    const Node subs = config.at("submodels");
    subs.array();
    if (subs.size() == 0) subs.fail("is empty; a SlimmableContainer needs at least one submodel");
    if (!read_weights(doc).empty()) doc.at("weights").fail("must be empty for a SlimmableContainer; its submodels carry the weights");
    std::vector<double> max_values;
    for (std::size_t i = 0; i < subs.size(); ++i) {
        const Node sub = subs.item(i);
        sub.object();
        const double v = sub.at("max_value").number();
        if (!max_values.empty() && !(v > max_values.back()))
            sub.at("max_value").fail("is " + rtnt::detail::number_str(v) + "; max_value must increase from submodel to submodel");
        max_values.push_back(v);
    }
    if (max_values.back() < 1.0)
        subs.item(subs.size() - 1).at("max_value").fail("is " + rtnt::detail::number_str(max_values.back()) +
                                                        "; the last submodel's max_value must be at least 1");
    std::size_t chosen = subs.size() - 1;
    if (options.slim) {
        const double v = *options.slim;
        if (!(v >= 0.0 && v <= 1.0)) throw ModelError("slim value " + rtnt::detail::number_str(v) + " is outside [0, 1]");
        for (std::size_t i = 0; i < max_values.size(); ++i)
            if (v < max_values[i]) {
                chosen = i;
                break;
            }
    }
    // Every submodel is loaded, so a broken one is reported whichever is chosen; the chosen one is
    // kept. All of them count against the one budget.
    std::optional<Model> kept;
    for (std::size_t i = 0; i < subs.size(); ++i) {
        Model m = load_node(subs.item(i).at("model"), LoadOptions{}, budget, depth + 1);
        if (i == chosen) kept.emplace(std::move(m));
    }
    kept->set_description("NAM " + version + " SlimmableContainer, submodel " + std::to_string(chosen + 1) + " of " +
                          std::to_string(subs.size()) + " (max_value " + rtnt::detail::number_str(max_values[chosen]) +
                          "): " + kept->info().description);
    return std::move(*kept);
}

inline Model load_node(const Node& doc, const LoadOptions& options, MemoryBudget& budget, int depth) {
    doc.object();
    if (depth > 4) doc.fail("containers nest deeper than 4 levels");
    const std::string version = check_version(doc);
    const std::string& arch = doc.at("architecture").string();
    if (arch == "SlimmableContainer") return load_container(doc, version, options, budget, depth);
    if (arch == "WaveNet" || arch == "LSTM") {
        // Built first, so that a slimmable WaveNet is refused as such rather than for the slim value.
        Model m = arch == "WaveNet" ? load_wavenet(doc, version, budget) : load_lstm(doc, version, budget);
        if (options.slim)
            throw ModelError("a slim value was given, but this " + arch +
                             " model is not slimmable (only a SlimmableContainer such as A2.nam is)");
        return m;
    }
    if (arch == "ConvNet" || arch == "Linear")
        doc.at("architecture").fail("'" + arch + "' is a NAM architecture rtnt does not run (supported: WaveNet, LSTM, SlimmableContainer)");
    doc.at("architecture").fail("unknown architecture '" + arch +
                                "' (NAM architectures: WaveNet, LSTM, ConvNet, Linear, SlimmableContainer)");
}

}  // namespace detail

/// Builds a prepared Model from a parsed .nam document (see is_nam). Throws ModelError.
inline Model load(const json::Value& doc, const LoadOptions& options = {}) {
    rtnt::detail::MemoryBudget budget(options.memory_budget_bytes);
    return detail::load_node(detail::Node(doc, ""), options, budget, 0);
}

}  // namespace nam
}  // namespace rtnt
