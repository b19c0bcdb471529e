// rtnt LV2 plugin: one mono model, loaded at instantiate from the bundle's model.nam (a NAM file)
// or model.json (RTNeural JSON), with smoothed input/output gain (dB) and a click-free bypass.
// A .nam model's activate() and fade-in reset prewarm it on silence as NAM Core does.
//
// Signal path (enabled):  out = output_gain * model(input_gain * in)
// Bypassed:               out = in (gains do not apply); the model is not run while fully bypassed
//                         and is reset when it fades back in.
// Gain and bypass changes ramp linearly over kRampSeconds and then hold their target exactly,
// so at 0 dB and enabled the output is the runtime's output bit for bit.
//
// A conditioned model (RTNeural JSON with 'controls') gets one control input port per knob after
// the fixed ports (index kFirstKnob + j for control j). Each knob port is clamped to the control's
// [minimum, maximum] (NaN reads as the default) and smoothed by a linear ramp: on a change it moves
// from its current value to the new one in equal steps over round(sample_rate * kRampSeconds)
// samples (960 at 48 kHz), then holds the port value exactly; it starts at the control's default at
// activate(). The ramped values are the model's per-sample controls.
//
// run() allocates nothing, takes no lock, does no I/O and flushes denormals. Host blocks of any
// length are cut into chunks of the prepared length (the host's bufsz:maxBlockLength when it
// offers one, else its nominalBlockLength, else kDefaultBlock).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "lv2_abi.hpp"
#include "rtnt.hpp"

#ifndef RTNT_LV2_URI
#error "define RTNT_LV2_URI to the plugin URI (the exporter passes -DRTNT_LV2_URI=...)"
#endif

namespace {

// Port indices: the fixed ports, then one knob port per control of a conditioned model (kFirstKnob + j), then,
// for a gray-box model with a `fir` layer, the `cabinet` toggle (kFirstKnob + number of controls).
enum PortIndex : uint32_t { kIn = 0, kOut, kInputGain, kOutputGain, kEnabled, kLatency, kFirstKnob };

constexpr int kDefaultBlock = 512;       // chunk length when the host announces no block length
constexpr int kMaxPreparedBlock = 8192;  // longer host blocks are processed in chunks of this
constexpr double kRampSeconds = 0.02;
constexpr float kMinGainDb = -24.0f;
constexpr float kMaxGainDb = 24.0f;
constexpr double kTrainedRate = 48000.0;  // rtnt's models; a .nam file may declare its own
/// Model files the exporter writes, in the order the plugin looks for them.
constexpr const char* kModelFiles[] = {"model.nam", "model.json"};

/// A gain port: dB in, linear out, with pow() evaluated only when the port value changes.
class GainPort {
public:
    float linear(const float* port) {
        const float db = port ? *port : 0.0f;
        if (db != last_db_) {
            last_db_ = db;
            const float clamped = std::isfinite(db) ? std::min(kMaxGainDb, std::max(kMinGainDb, db)) : 0.0f;
            linear_ = static_cast<float>(std::pow(10.0, clamped / 20.0));
        }
        return linear_;
    }

private:
    float last_db_ = 0.0f;
    float linear_ = 1.0f;
};

/// A value that moves linearly to a new target over a fixed number of samples, then holds the
/// target exactly (no residual error, unlike a one-pole smoother).
class Ramp {
public:
    void set_length(int samples) { length_ = std::max(1, samples); }

    void snap(float v) {
        current_ = target_ = v;
        remaining_ = 0;
    }

    void retarget(float v) {
        if (v == target_) return;
        target_ = v;
        remaining_ = length_;
        step_ = (target_ - current_) / static_cast<float>(length_);
    }

    bool settled() const { return remaining_ == 0; }
    float value() const { return current_; }
    float target() const { return target_; }

    /// The value for the next sample.
    float next() {
        if (remaining_ > 0) current_ = (--remaining_ == 0) ? target_ : current_ + step_;
        return current_;
    }

private:
    int length_ = 1;
    int remaining_ = 0;
    float current_ = 0.0f;
    float target_ = 0.0f;
    float step_ = 0.0f;
};

/// The host's log feature when offered, else stderr. Used only outside run().
class Log {
public:
    explicit Log(const LV2_Feature* const* features) {
        const LV2_URID_Map* map = nullptr;
        for (int i = 0; features && features[i]; ++i) {
            if (std::strcmp(features[i]->URI, lv2uri::kLog) == 0) log_ = static_cast<const LV2_Log_Log*>(features[i]->data);
            if (std::strcmp(features[i]->URI, lv2uri::kUridMap) == 0) map = static_cast<const LV2_URID_Map*>(features[i]->data);
        }
        if (log_ && map) {
            error_ = map->map(map->handle, lv2uri::kLogError);
            warning_ = map->map(map->handle, lv2uri::kLogWarning);
        } else {
            log_ = nullptr;
        }
    }

    void error(const std::string& msg) const { write(error_, "error", msg); }
    void warning(const std::string& msg) const { write(warning_, "warning", msg); }

private:
    void write(LV2_URID type, const char* level, const std::string& msg) const {
        if (log_)
            log_->printf(log_->handle, type, "rtnt: %s\n", msg.c_str());
        else
            std::fprintf(stderr, "rtnt: %s: %s\n", level, msg.c_str());
    }

    const LV2_Log_Log* log_ = nullptr;
    LV2_URID error_ = 0;
    LV2_URID warning_ = 0;
};

/// The block length announced through options (maxBlockLength, else nominalBlockLength), or 0.
int announced_block_length(const LV2_Feature* const* features) {
    const LV2_URID_Map* map = nullptr;
    const LV2_Options_Option* options = nullptr;
    for (int i = 0; features && features[i]; ++i) {
        if (std::strcmp(features[i]->URI, lv2uri::kUridMap) == 0) map = static_cast<const LV2_URID_Map*>(features[i]->data);
        if (std::strcmp(features[i]->URI, lv2uri::kOptions) == 0)
            options = static_cast<const LV2_Options_Option*>(features[i]->data);
    }
    if (!map || !options) return 0;
    const LV2_URID max_len = map->map(map->handle, lv2uri::kMaxBlockLength);
    const LV2_URID nominal_len = map->map(map->handle, lv2uri::kNominalBlockLength);
    const LV2_URID atom_int = map->map(map->handle, lv2uri::kAtomInt);
    const LV2_URID atom_long = map->map(map->handle, lv2uri::kAtomLong);
    long max_value = 0, nominal_value = 0;
    for (const LV2_Options_Option* o = options; o->key != 0 || o->value != nullptr; ++o) {
        if (o->context != LV2_OPTIONS_INSTANCE || !o->value) continue;
        long v = 0;
        if (o->type == atom_int && o->size == sizeof(int32_t))
            v = *static_cast<const int32_t*>(o->value);
        else if (o->type == atom_long && o->size == sizeof(int64_t))
            v = static_cast<long>(*static_cast<const int64_t*>(o->value));
        else
            continue;
        if (o->key == max_len) max_value = v;
        if (o->key == nominal_len) nominal_value = v;
    }
    const long chosen = max_value > 0 ? max_value : nominal_value;
    return chosen > 0 ? static_cast<int>(std::min<long>(chosen, kMaxPreparedBlock)) : 0;
}

/// A knob port of a conditioned model: the control's range and default, and its ramp.
struct Knob {
    const float* port = nullptr;
    float minimum = 0.0f;
    float maximum = 1.0f;
    float default_value = 0.0f;
    Ramp ramp;

    /// The port value clamped to the control's range (the default when unconnected or NaN).
    float target() const {
        if (!port || std::isnan(*port)) return default_value;
        return std::min(maximum, std::max(minimum, *port));
    }
};

class Plugin {
public:
    Plugin(rtnt::Model model, double sample_rate, int block)
        : model_(std::move(model)), block_(block), dry_(block), x_(block), y_(block),
          knobs_(model_.info().controls.size()),
          controls_(static_cast<std::size_t>(block) * model_.info().controls.size()) {
        model_.prepare(block_);
        for (std::size_t i = 0; i < model_.num_layers(); ++i)  // the final top-level FIR: its cabinet
            if (dynamic_cast<const rtnt::Fir*>(&model_.layer(i))) cabinet_layer_ = static_cast<long>(i);
        const int ramp = static_cast<int>(std::lround(sample_rate * kRampSeconds));
        in_gain_.set_length(ramp);
        out_gain_.set_length(ramp);
        mix_.set_length(ramp);
        for (std::size_t j = 0; j < knobs_.size(); ++j) {
            const rtnt::ControlSpec& c = model_.info().controls[j];
            knobs_[j].minimum = static_cast<float>(c.minimum);
            knobs_[j].maximum = static_cast<float>(c.maximum);
            knobs_[j].default_value = static_cast<float>(c.default_value);
            knobs_[j].ramp.set_length(ramp);
        }
    }

    void connect(uint32_t port, void* data) {
        switch (port) {
            case kIn: in_ = static_cast<const float*>(data); break;
            case kOut: out_ = static_cast<float*>(data); break;
            case kInputGain: input_gain_db_ = static_cast<const float*>(data); break;
            case kOutputGain: output_gain_db_ = static_cast<const float*>(data); break;
            case kEnabled: enabled_ = static_cast<const float*>(data); break;
            case kLatency: latency_ = static_cast<float*>(data); break;
            default:
                if (port >= kFirstKnob && port - kFirstKnob < knobs_.size())
                    knobs_[port - kFirstKnob].port = static_cast<const float*>(data);
                else if (port == kFirstKnob + knobs_.size() && cabinet_layer_ >= 0)
                    cabinet_ = static_cast<const float*>(data);
                break;
        }
    }

    void activate() {
        for (Knob& k : knobs_) k.ramp.snap(k.default_value);
        model_.reset();
        model_running_ = true;
        fresh_ = true;
    }

    void run(uint32_t sample_count) noexcept {
        rtnt::DenormalGuard ftz;
        if (latency_) *latency_ = 0.0f;  // causal model, no oversampling: no added latency
        if (!in_ || !out_) return;
        const float in_gain = input_gain_.linear(input_gain_db_);
        const float out_gain = output_gain_.linear(output_gain_db_);
        const float mix = (!enabled_ || *enabled_ > 0.5f) ? 1.0f : 0.0f;
        if (cabinet_layer_ >= 0)  // cabinet off: the final FIR is bypassed (it keeps running, so no stale history)
            model_.set_bypassed(static_cast<std::size_t>(cabinet_layer_), cabinet_ && *cabinet_ <= 0.5f);
        if (fresh_) {  // first run after activate: start at the port values, no ramp
            in_gain_.snap(in_gain);
            out_gain_.snap(out_gain);
            mix_.snap(mix);
            fresh_ = false;
        } else {
            in_gain_.retarget(in_gain);
            out_gain_.retarget(out_gain);
            mix_.retarget(mix);
        }
        for (Knob& k : knobs_) k.ramp.retarget(k.target());
        if (mix_.target() > 0.0f && !model_running_) {  // fading in from full bypass: start clean
            model_.reset();
            model_running_ = true;
        }
        const int total = static_cast<int>(sample_count);
        for (int done = 0; done < total;) {
            const int m = std::min(block_, total - done);
            run_chunk(in_ + done, out_ + done, m);
            done += m;
        }
    }

private:
    /// Processes m <= block_ samples. in and out may be the same buffer (in-place hosts).
    void run_chunk(const float* in, float* out, int m) noexcept {
        float* dry = dry_.data();
        std::memcpy(dry, in, sizeof(float) * static_cast<std::size_t>(m));
        if (mix_.settled() && mix_.value() == 0.0f) {  // fully bypassed
            model_running_ = false;
            in_gain_.snap(in_gain_.target());
            out_gain_.snap(out_gain_.target());
            for (Knob& k : knobs_) k.ramp.snap(k.ramp.target());
            if (out != in) std::memcpy(out, dry, sizeof(float) * static_cast<std::size_t>(m));
            return;
        }
        float* x = x_.data();
        float* y = y_.data();
        if (in_gain_.settled()) {
            const float g = in_gain_.value();
            for (int i = 0; i < m; ++i) x[i] = dry[i] * g;
        } else {
            for (int i = 0; i < m; ++i) x[i] = dry[i] * in_gain_.next();
        }
        if (knobs_.empty()) {
            model_.process(x, y, m);
        } else {
            fill_controls(m);
            model_.process(x, y, m, controls_.data());
        }
        if (out_gain_.settled() && mix_.settled()) {  // enabled and steady
            const float g = out_gain_.value();
            for (int i = 0; i < m; ++i) out[i] = y[i] * g;
        } else {
            for (int i = 0; i < m; ++i) {
                const float wet = y[i] * out_gain_.next();
                const float w = mix_.next();
                out[i] = w * wet + (1.0f - w) * dry[i];
            }
        }
    }

    /// Writes the next m per-sample knob values (row-major, m x K) into controls_.
    void fill_controls(int m) noexcept {
        const std::size_t k = knobs_.size();
        float* c = controls_.data();
        for (std::size_t j = 0; j < k; ++j) {
            Ramp& r = knobs_[j].ramp;
            if (r.settled()) {
                const float v = r.value();
                for (int t = 0; t < m; ++t) c[t * k + j] = v;
            } else {
                for (int t = 0; t < m; ++t) c[t * k + j] = r.next();
            }
        }
    }

    rtnt::Model model_;
    int block_;
    std::vector<float> dry_, x_, y_;
    std::vector<Knob> knobs_;
    std::vector<float> controls_;
    GainPort input_gain_, output_gain_;
    Ramp in_gain_, out_gain_, mix_;
    bool fresh_ = true;
    bool model_running_ = true;

    const float* in_ = nullptr;
    float* out_ = nullptr;
    const float* input_gain_db_ = nullptr;
    const float* output_gain_db_ = nullptr;
    const float* enabled_ = nullptr;
    float* latency_ = nullptr;
    const float* cabinet_ = nullptr;  // declared only in bundles of a gray-box model with a `fir` layer
    long cabinet_layer_ = -1;
};

LV2_Handle instantiate(const LV2_Descriptor*, double sample_rate, const char* bundle_path,
                       const LV2_Feature* const* features) {
    const Log log(features);
    std::string dir = bundle_path ? bundle_path : "";
    if (!dir.empty() && dir.back() != '/') dir += '/';
    std::string path = dir + kModelFiles[1];
    for (const char* name : kModelFiles) {
        if (FILE* f = std::fopen((dir + name).c_str(), "rb")) {
            std::fclose(f);
            path = dir + name;
            break;
        }
    }
    try {
        rtnt::Model model = rtnt::load_model_file(path);
        if (model.in_size() != 1 + model.num_controls() || model.out_size() != 1) {
            log.error(path + ": the model has " + std::to_string(model.in_size()) + " input(s) and " +
                      std::to_string(model.out_size()) + " output(s); this plugin runs mono models (1 audio input " +
                      "plus one per control, 1 output)");
            return nullptr;
        }
        const double expected = model.info().sample_rate > 0 ? model.info().sample_rate : kTrainedRate;
        if (sample_rate != expected)
            log.warning("the model was trained at " + std::to_string(static_cast<long>(expected)) + " Hz; at " +
                        std::to_string(static_cast<long>(sample_rate)) + " Hz it will not sound as captured");
        const int announced = announced_block_length(features);
        return new Plugin(std::move(model), sample_rate, announced > 0 ? announced : kDefaultBlock);
    } catch (const std::exception& e) {
        log.error(path + ": " + e.what());
        return nullptr;
    }
}

void connect_port(LV2_Handle h, uint32_t port, void* data) { static_cast<Plugin*>(h)->connect(port, data); }
void activate(LV2_Handle h) { static_cast<Plugin*>(h)->activate(); }
void run(LV2_Handle h, uint32_t n) { static_cast<Plugin*>(h)->run(n); }
void deactivate(LV2_Handle) {}
void cleanup(LV2_Handle h) { delete static_cast<Plugin*>(h); }
const void* extension_data(const char*) { return nullptr; }

const LV2_Descriptor kDescriptor = {RTNT_LV2_URI, instantiate, connect_port, activate,
                                    run,          deactivate,  cleanup,      extension_data};

}  // namespace

RTNT_LV2_EXPORT const LV2_Descriptor* lv2_descriptor(uint32_t index) { return index == 0 ? &kDescriptor : nullptr; }
