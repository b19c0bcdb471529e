// Proves that process() and reset() allocate nothing after prepare(): every global operator new and (with
// glibc) malloc/calloc/realloc is replaced by a counting version, armed only around process().
#if defined(__GNUC__) && !defined(__clang__)
// The replaced operator new/delete below pair malloc with free by design.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "common.hpp"
#include "rtnt.hpp"

namespace {
std::atomic<bool> g_armed{false};
std::atomic<long> g_count{0};
inline void note() noexcept {
    if (g_armed.load(std::memory_order_relaxed)) g_count.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

#if defined(__GLIBC__)
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* malloc(std::size_t n) {
    note();
    return __libc_malloc(n);
}
void* calloc(std::size_t a, std::size_t b) {
    note();
    return __libc_calloc(a, b);
}
void* realloc(void* p, std::size_t n) {
    note();
    return __libc_realloc(p, n);
}
}
#define RTNT_COUNTS_MALLOC 1
#endif

void* operator new(std::size_t n) {
    note();
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, std::align_val_t a) {
    note();
    const std::size_t al = static_cast<std::size_t>(a);
    if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

long allocations_during(rtnt::Model& m, const std::vector<float>& x, std::vector<float>& y) {
    g_count = 0;
    g_armed = true;
    std::size_t pos = 0;
    for (int n : {1, 7, 64, 1, 256, 1000, 3, 4096}) {  // 1000 and 4096 exceed max_block: chunked
        m.process(x.data() + pos, y.data() + pos, n);
        pos += n;
    }
    m.reset();
    m.process(x.data(), y.data(), 128);
    g_armed = false;
    return g_count.load();
}

/// The same block sequence for a conditioned model, with per-sample controls that change within
/// and between blocks, and a block with the controls held at their defaults (nullptr).
long allocations_with_controls(rtnt::Model& m, const std::vector<float>& x, std::vector<float>& y) {
    const int k = m.num_controls();
    std::vector<float> c(x.size() * static_cast<std::size_t>(k));
    for (std::size_t i = 0; i < c.size(); ++i) c[i] = 0.5f + 0.5f * std::sin(0.001f * static_cast<float>(i));
    g_count = 0;
    g_armed = true;
    std::size_t pos = 0;
    for (int n : {1, 7, 64, 1, 256, 1000, 3, 4096}) {
        m.process(x.data() + pos, y.data() + pos, n, c.data() + pos * k);
        pos += n;
    }
    m.process(x.data(), y.data(), 128, nullptr);
    m.reset();
    m.process(x.data(), y.data(), 128, c.data());
    g_armed = false;
    return g_count.load();
}

}  // namespace

int main(int argc, char** argv) {
    CHECK(argc == 4);
    const std::string dir = argv[1], nam_dir = argv[2], corpus_dir = argv[3];
    std::vector<float> x = test_signal(8192, 2), y(8192);

    // The counter sees allocations when armed (positive control).
    g_count = 0;
    g_armed = true;
    auto* probe = new std::vector<float>(100);
    g_armed = false;
    delete probe;
    CHECK(g_count.load() >= 2);
#if defined(RTNT_COUNTS_MALLOC)
    g_count = 0;
    g_armed = true;
    void* volatile raw = std::malloc(64);  // volatile: the compiler may not elide the pair
    g_armed = false;
    std::free(raw);
    CHECK(g_count.load() == 1);
#endif

    std::vector<std::string> texts;
    for (const char* name : {"conv", "dense", "gru", "lstm"}) {
        std::ifstream f(dir + "/" + name + ".json");
        CHECK(f.good());
        std::stringstream ss;
        ss << f.rdbuf();
        texts.push_back(ss.str());
    }
    texts.push_back(conv_stack_json(24, {1, 2, 4, 8, 16, 32, 64, 128, 256, 512}, 3, 9));
    // Gray-box: biquads, waveshaper, gain and a 2048-tap FIR (partitioned FFT form) and a 100-tap one (direct);
    // then a chain with a parallel layer (its branch scratch buffers are allocated in prepare()).
    {
        std::string fir2048 = "[", fir100 = "[";
        for (int k = 0; k < 2048; ++k) fir2048 += (k ? "," : "") + std::to_string(0.01 * ((k * 37) % 11 - 5));
        for (int k = 0; k < 100; ++k) fir100 += (k ? "," : "") + std::to_string(0.02 * ((k * 13) % 7 - 3));
        const std::string mono = "\"activation\": \"\", \"shape\": [null, null, 1], ";
        texts.push_back(
            "{\"rtnt_format\": \"graybox-1\", \"in_shape\": [null, null, 1], \"layers\": ["
            "{\"type\": \"biquad\", " + mono + "\"sections\": 2, \"weights\": [[[1, -1, 0, -0.995, 0], "
            "[0.2, 0.4, 0.2, -0.3, 0.1]]]},"
            "{\"type\": \"waveshaper\", " + mono + "\"weights\": [[4.0, 0.2, 0.5]]},"
            "{\"type\": \"fir\", " + mono + "\"taps\": 100, \"weights\": [" + fir100 + "]]},"
            "{\"type\": \"gain\", " + mono + "\"weights\": [[0.7]]},"
            "{\"type\": \"fir\", " + mono + "\"taps\": 2048, \"weights\": [" + fir2048 + "]]}]}");
        // Oversampled runs: a 4x waveshaper and a 2x MLP (dense tanh 8, dense 1) between polyphase filters.
        std::string taps = "[";
        for (int k = 0; k < 48; ++k) taps += (k ? "," : "") + std::to_string(0.03 * ((k * 11) % 5 - 2));
        taps += "]";
        std::string w8 = "[[", b8 = "[", w1 = "[";
        for (int k = 0; k < 8; ++k) {
            w8 += (k ? "," : "") + std::to_string(0.3 * (k - 4));
            b8 += (k ? "," : "") + std::to_string(0.05 * k);
            w1 += std::string(k ? "," : "") + "[" + std::to_string(0.2 * (3 - k)) + "]";
        }
        w8 += "]]";
        b8 += "]";
        w1 += "]";
        auto over = [&](int factor, int layers) {
            return "\"oversampling\": {\"factor\": " + std::to_string(factor) + ", \"layers\": " + std::to_string(layers) +
                   ", \"taps\": 48, \"up\": " + taps + ", \"down\": " + taps + "}, ";
        };
        texts.push_back(
            "{\"rtnt_format\": \"graybox-1\", \"in_shape\": [null, null, 1], \"layers\": ["
            "{\"type\": \"waveshaper\", " + mono + over(4, 1) + "\"weights\": [[8.0, 0.2, 0.5]]},"
            "{\"type\": \"dense\", \"activation\": \"tanh\", \"shape\": [null, null, 8], " + over(2, 2) +
            "\"weights\": [" + w8 + ", " + b8 + "]},"
            "{\"type\": \"dense\", \"activation\": \"\", \"shape\": [null, null, 1], \"weights\": [" + w1 + ", [0.1]]}]}");
        // A parallel layer: the identity, biquads + a 2x oversampled waveshaper, a nested parallel, a dense branch
        // (widths 1-4-1).
        texts.push_back(
            "{\"rtnt_format\": \"graybox-1\", \"in_shape\": [null, null, 1], \"layers\": ["
            "{\"type\": \"parallel\", " + mono + "\"weights\": [], \"branches\": [[], "
            "[{\"type\": \"biquad\", " + mono + "\"sections\": 1, \"weights\": [[[0.2, 0.4, 0.2, -0.3, 0.1]]]},"
            "{\"type\": \"waveshaper\", " + mono + over(2, 1) + "\"weights\": [[4.0, 0.2, 0.5]]}],"
            "[{\"type\": \"parallel\", " + mono + "\"weights\": [], \"branches\": [[], "
            "[{\"type\": \"fir\", " + mono + "\"taps\": 100, \"weights\": [" + fir100 + "]]}]]}],"
            "[{\"type\": \"dense\", \"activation\": \"tanh\", \"shape\": [null, null, 4], "
            "\"weights\": [[[0.5, -0.3, 0.2, 0.1]], [0.0, 0.1, 0.0, -0.1]]},"
            "{\"type\": \"dense\", \"activation\": \"\", \"shape\": [null, null, 1], "
            "\"weights\": [[[0.3], [0.2], [-0.4], [0.1]], [0.0]]}]]},"
            "{\"type\": \"gain\", " + mono + "\"weights\": [[0.7]]}]}");
    }
    std::vector<rtnt::Model> models;
    for (const auto& text : texts) models.push_back(rtnt::load_model(text));
    // .nam: A1 WaveNet, the A2 container (both submodels), an LSTM (its reset() prewarms 24000 samples).
    for (const char* name : {"wavenet_a1_standard.nam", "A2.nam", "lstm.nam", "slimmable_container.nam"})
        models.push_back(rtnt::load_model_file(nam_dir + "/models/" + name));
    rtnt::LoadOptions lite;
    lite.slim = 0.0;
    models.push_back(rtnt::load_model_file(nam_dir + "/models/A2.nam", lite));
    // A .nam with an envelope gain (docs/envelope_gain_format.md): its reset() prewarms the whole chain.
    models.push_back(rtnt::load_model_file(corpus_dir + "/nam_envelope_gain.json"));
    for (auto& m : models) {
        m.prepare(256);
        const long n = allocations_during(m, x, y);
        std::printf("allocations during process and reset (%s): %ld\n", m.info().description.c_str(), n);
        CHECK(n == 0);
    }
    // Conditioned models (1 and 3 controls), their controls changing at every sample.
    for (int k : {1, 3}) {
        rtnt::Model m = rtnt::load_model(conv_stack_json(16, {1, 2, 4, 8, 16}, 3, 11 + k, k));
        CHECK(m.num_controls() == k && m.in_size() == 1 + k);
        m.prepare(256);
        const long n = allocations_with_controls(m, x, y);
        std::printf("allocations during process with changing controls (%d control(s)): %ld\n", k, n);
        CHECK(n == 0);
    }
    // A FiLM model (docs/film_format.md; the fuzz corpus's film.json): its gamma/beta recomputed whenever the
    // controls change, at every sample here.
    {
        rtnt::Model m = rtnt::load_model(R"({"rtnt_format": "film-1", "in_shape": [null, null, 3], "controls": [
            {"name": "gain", "minimum": 0, "maximum": 1, "default": 0.5}, {"name": "tone", "minimum": 0, "maximum": 1, "default": 0.5}],
            "layers": [{"type": "film-split", "activation": "", "shape": [null, null, 1]},
            {"type": "conv1d", "activation": "tanh", "shape": [null, null, 2], "kernel_size": [2], "dilation": [2], "groups": 1,
             "weights": [[[[0.3, -0.2]], [[0.6, 0.4]]], [0.05, -0.02]]},
            {"type": "conv1d", "activation": "", "shape": [null, null, 1], "kernel_size": [1], "dilation": [1], "groups": 1,
             "weights": [[[[0.8], [-0.6]]], [0.01]]}],
            "film": {"mlp": [{"type": "dense", "activation": "tanh", "shape": [null, 3],
                              "weights": [[[0.5, -0.3, 0.2], [0.1, 0.4, -0.6]], [0.0, 0.1, -0.1]]}],
                     "adaptors": [{"layer": 1, "weights": [[[0.2, -0.1, 0.3, 0.05], [0.1, 0.2, -0.2, 0.1],
                                                           [-0.3, 0.1, 0.1, -0.05]], [1.0, 1.0, 0.0, 0.0]]}]}})");
        CHECK(m.num_controls() == 2 && m.in_size() == 3);
        m.prepare(256);
        const long n = allocations_with_controls(m, x, y);
        std::printf("allocations during process with changing controls (FiLM, 2 controls): %ld\n", n);
        CHECK(n == 0);
    }
    // Knob-conditioned .nam files from the fuzz corpus: NAM's multi-channel condition (nam_knobs.nam), every NAM
    // FiLM switch on, in blended, gated and plain layers (nam_film.nam, the generic path), and activation_pre_film
    // alone as rtnt trains it (nam_film_trained.nam, the fused kernels): the FiLMs' scales and shifts recomputed
    // from the condition at every sample.
    for (const char* name : {"nam_knobs.nam", "nam_film.nam", "nam_film_trained.nam"}) {
        rtnt::Model m = rtnt::load_model_file(corpus_dir + "/" + name);
        if (std::string(name) == "nam_film_trained.nam") CHECK(m.info().kernels == "fused fused");
        CHECK(m.num_controls() == 2 && m.in_size() == 3);
        m.prepare(256);
        const long n = allocations_with_controls(m, x, y);
        std::printf("allocations during process with changing controls (%s): %ld\n", name, n);
        CHECK(n == 0);
    }
    // A conditioned gray-box chain: controllers recompute a peaking section (RBJ), the waveshaper's drive and the
    // gain whenever the control changes, here at almost every sample.
    {
        const std::string mono = "\"activation\": \"\", \"shape\": [null, null, 1], ";
        const std::string ctl = "\"mapping\": \"tanh\", \"minimum\": -24, \"maximum\": 24, \"raw\": 0.1, \"weights\": [0.5]";
        rtnt::Model m = rtnt::load_model(
            "{\"rtnt_format\": \"graybox-1\", \"in_shape\": [null, null, 2], \"controls\": [{\"name\": \"drive\", "
            "\"minimum\": 0, \"maximum\": 1, \"default\": 0.5}], \"layers\": ["
            "{\"type\": \"biquad\", " + mono + "\"sections\": 2, \"parameters\": [{\"kind\": \"peaking\", \"freq_hz\": 700, "
            "\"q\": 0.8, \"gain_db\": 3}, {\"kind\": \"dc_blocker\", \"pole\": 0.995}], \"controllers\": [{\"parameter\": "
            "\"gain_db\", \"section\": 0, " + ctl + "}], \"weights\": [[[1, 0, 0, 0, 0], [1, -1, 0, -0.995, 0]]]},"
            "{\"type\": \"waveshaper\", " + mono + "\"controllers\": [{\"parameter\": \"drive_db\", " + ctl +
            "}], \"weights\": [[4.0, 0.2, 0.5]]},"
            "{\"type\": \"gain\", " + mono + "\"controllers\": [{\"parameter\": \"gain_db\", " + ctl +
            "}], \"weights\": [[0.7]]}]}");
        CHECK(m.num_controls() == 1 && m.in_size() == 2);
        m.prepare(256);
        const long n = allocations_with_controls(m, x, y);
        std::printf("allocations during process with changing controls (gray-box controllers): %ld\n", n);
        CHECK(n == 0);
    }
    std::printf("allocation test passed\n");
    return 0;
}
