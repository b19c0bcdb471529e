// Conformance, block-partition invariance, chunking, reset, two-instance isolation, error
// messages, and a replay of fuzz inputs (corpus and regressions) through the fuzz entry point.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common.hpp"
#include "rtnt.hpp"

namespace {

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    CHECK(a.size() == b.size());
    float m = 0.0f;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
    return m;
}

std::vector<float> run(rtnt::Model& m, const std::vector<float>& x, const std::vector<int>& sizes) {
    m.reset();
    std::vector<float> y(x.size() * m.out_size());
    std::size_t pos = 0, k = 0;
    while (pos < x.size()) {
        const int n = static_cast<int>(std::min<std::size_t>(sizes[k++ % sizes.size()], x.size() - pos));
        m.process(x.data() + pos, y.data() + pos * m.out_size(), n);
        pos += n;
    }
    return y;
}

void test_conformance(const std::string& dir) {
    for (const char* name : {"conv", "dense", "gru", "lstm"}) {
        const std::string base = dir + "/" + name;
        rtnt::Model m = rtnt::load_model_file(base + ".json");
        const auto x = read_csv(base + "_x.csv"), y = read_csv(base + "_y.csv");
        for (int block : {1, 7, 100}) {
            const float e = max_abs_diff(run(m, x, {block}), y);
            std::printf("conformance %s block %d: max abs error %.3g\n", name, block, e);
            CHECK(e <= 1e-5f);
        }
    }
}

void test_partitions(rtnt::Model& m, const char* label) {
    const auto x = test_signal(20000, 7);
    m.prepare(4096);
    const auto ref = run(m, x, {4096});
    std::mt19937 rng(3);
    std::vector<int> random_sizes;
    for (int i = 0; i < 200; ++i) random_sizes.push_back(1 + static_cast<int>(rng() % 700));
    for (const auto& sizes : std::vector<std::vector<int>>{{1}, {7}, {32}, {64}, {128}, {511}, {1024}, random_sizes}) {
        // Every output element is computed in the same order whatever the block: bit-identical.
        CHECK(max_abs_diff(run(m, x, sizes), ref) == 0.0f);
    }
    // n larger than max_block is chunked internally.
    m.prepare(64);
    CHECK(max_abs_diff(run(m, x, {1000}), ref) == 0.0f);
    std::printf("partition invariance %s: ok\n", label);
}

void test_reset_and_isolation(const std::string& text) {
    rtnt::Model a = rtnt::load_model(text), b = rtnt::load_model(text), solo = rtnt::load_model(text);
    const auto x = test_signal(6000, 1);
    std::vector<float> xb(x.rbegin(), x.rend());
    const auto ya_ref = run(solo, x, {256});
    const auto yb_ref = run(solo, xb, {256});
    // Reset really restarts: the second run equals the first bit for bit.
    CHECK(max_abs_diff(run(solo, x, {256}), ya_ref) == 0.0f);
    std::vector<float> ya(x.size()), yb(x.size());
    for (std::size_t pos = 0, k = 0; pos < x.size(); ++k) {
        const int n = static_cast<int>(std::min<std::size_t>(1 + (k * 37) % 200, x.size() - pos));
        a.process(x.data() + pos, ya.data() + pos, n);
        b.process(xb.data() + pos, yb.data() + pos, n);
        pos += n;
    }
    CHECK(max_abs_diff(ya, ya_ref) == 0.0f);
    CHECK(max_abs_diff(yb, yb_ref) == 0.0f);
    std::printf("reset and two-instance isolation: ok\n");
}

void expect_error(const std::string& text, const char* fragment) {
    try {
        rtnt::load_model(text);
    } catch (const rtnt::ModelError& e) {
        const std::string msg = e.what();
        if (msg.find(fragment) == std::string::npos || msg.find('\n') != std::string::npos) {
            std::fprintf(stderr, "message '%s' lacks '%s'\n", msg.c_str(), fragment);
            std::exit(1);
        }
        return;
    }
    std::fprintf(stderr, "no error for: %s\n", text.c_str());
    std::exit(1);
}

void test_errors() {
    expect_error("{\"in_shape\":[null,1],\"layers\":[{\"type\":\"dense\",\"activation\":\"\",\"shape\":[null,2],"
                 "\"weights\":[[[1,2]],[0,0]",
                 "truncated");
    expect_error("{\"in_shape\":[null,1],\"layers\":[{\"type\":\"conv1d\",\"activation\":\"\",\"shape\":[null,null,1],"
                 "\"kernel_size\":[2],\"dilation\":[-1],\"groups\":1,\"weights\":[[[[1]],[[1]]]]}]}",
                 "layers[0] (conv1d): 'dilation' is -1");
    expect_error("{\"in_shape\":[null,1],\"layers\":[{\"type\":\"dense\",\"activation\":\"\",\"shape\":[null,1],"
                 "\"weights\":[[[NaN]]]}]}",
                 "NaN");
    std::printf("errors: ok\n");
}

#if defined(RTNT_HAS_MXCSR)
/// An identity layer that records the MXCSR register while the model runs it.
class MxcsrProbe final : public rtnt::Layer {
public:
    MxcsrProbe() : rtnt::Layer(1, 1) {}
    unsigned seen = 0;
    void process(const float* in, int in_stride, float* out, int n) noexcept override {
        seen = _mm_getcsr();
        for (int t = 0; t < n; ++t) out[t * 8] = in[t * in_stride];
    }
};

void test_denormals_flushed_inside_process() {
    std::vector<std::unique_ptr<rtnt::Layer>> layers;
    layers.push_back(std::make_unique<MxcsrProbe>());
    rtnt::Model m(1, std::move(layers));
    const unsigned before = _mm_getcsr();
    float x[4] = {1e-39f, 1.0f, 2.0f, 3.0f}, y[4];
    m.process(x, y, 4);
    const auto& probe = static_cast<const MxcsrProbe&>(m.layer(0));
    CHECK((probe.seen & 0x8040u) == 0x8040u);  // FTZ and DAZ on inside process
    CHECK(_mm_getcsr() == before);              // the caller's mode restored
    std::printf("denormal flushing: ok\n");
}
#endif

}  // namespace

namespace {

/// tanh_inplace / sigmoid_inplace (core/lanes.hpp, registers and scalar tail) against fast_tanh /
/// fast_sigmoid, bit for bit: random values over the clamp range and beyond, and the special ones
/// (signed zeros, the clamp bounds, denormals, infinities, NaN, which must stay NaN). The arrays start one
/// float into a heap block, so no register load or store is aligned (an aligned one faults there).
void test_lane_functions_match_scalar() {
    std::vector<float> x = {0.5f, 0.0f, -0.0f, 9.0f, -9.0f, 9.000001f, -9.000001f, 1e-40f, -1e-40f,
                            INFINITY, -INFINITY, NAN, -NAN, 3.4e38f, -3.4e38f, 1e-7f, 0.5f, -0.5f};
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-12.0f, 12.0f);
    while (x.size() < 4099) x.push_back(u(rng));  // not a whole number of registers: the tail runs too
    const auto same_bits = [](float a, float b) { return std::isnan(a) ? std::isnan(b) : std::memcmp(&a, &b, 4) == 0; };
    std::vector<float> t = x, g = x;
    rtnt::tanh_inplace(t.data() + 1, static_cast<long>(t.size()) - 1);
    rtnt::sigmoid_inplace(g.data() + 1, static_cast<long>(g.size()) - 1);
    for (std::size_t i = 1; i < x.size(); ++i) {
        CHECK(same_bits(t[i], rtnt::fast_tanh(x[i])));
        CHECK(same_bits(g[i], rtnt::fast_sigmoid(x[i])));
    }
    std::printf("lane tanh/sigmoid bit-identical to the scalar ones: ok\n");
}

/// The envelope gain's logarithm and power (envelope_gain/envelope_gain.hpp) against std::log2 / std::exp2 over the
/// ranges the stage feeds them: every power of two and random values from 1e-16 (a -160 dB floor on the power) to 4,
/// and gains within +/- 40 dB (+/- 6.64 octaves).
void test_envelope_gain_math() {
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> octaves(-53.0f, 2.0f), gains(-6.7f, 6.7f);
    double worst_log = 0.0, worst_exp = 0.0;
    for (int i = 0; i < 200000; ++i) {
        const float x = i < 56 ? std::ldexp(1.0f, i - 53) : std::exp2(octaves(rng));
        worst_log = std::max(worst_log, std::fabs(double(rtnt::detail::fast_log2(x)) - std::log2(double(x))));
        const float y = gains(rng);
        worst_exp = std::max(worst_exp, std::fabs(double(rtnt::detail::fast_exp2(y)) / std::exp2(double(y)) - 1.0));
    }
    std::printf("envelope gain: fast_log2 within %.2g absolute, fast_exp2 within %.2g relative\n", worst_log, worst_exp);
    CHECK(worst_log < 5e-6);  // 53 octaves of exponent: a float's own spacing near 53 is 3.8e-6
    CHECK(worst_exp < 3e-7);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

/// Feeds every file in the given directories to the fuzz harness (a crash fails the test).
void replay_fuzz_inputs(int argc, char** argv) {
    int count = 0;
    for (int a = 2; a < argc; ++a) {
        if (!std::filesystem::is_directory(argv[a])) continue;
        for (const auto& e : std::filesystem::directory_iterator(argv[a])) {
            if (!e.is_regular_file()) continue;
            std::ifstream f(e.path(), std::ios::binary);
            const std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
            LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
            ++count;
        }
    }
    std::printf("replayed %d fuzz inputs\n", count);
}

}  // namespace

int main(int argc, char** argv) {
    CHECK(argc >= 2);
    const std::string dir = argv[1];
    test_conformance(dir);
    for (const char* name : {"conv", "dense", "gru", "lstm"}) {
        rtnt::Model m = rtnt::load_model_file(dir + "/" + name + ".json");
        test_partitions(m, name);
    }
    const std::string tcn = conv_stack_json(8, {1, 2, 4, 8, 16, 32, 64, 128, 256, 512}, 3, 5);
    rtnt::Model stack = rtnt::load_model(tcn);
    test_partitions(stack, "tcn");
    test_reset_and_isolation(tcn);
    test_errors();
    test_lane_functions_match_scalar();
    test_envelope_gain_math();
#if defined(RTNT_HAS_MXCSR)
    test_denormals_flushed_inside_process();
#endif
    replay_fuzz_inputs(argc, argv);
    std::printf("all runtime tests passed\n");
    return 0;
}
