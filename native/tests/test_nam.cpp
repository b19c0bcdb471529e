// NAM .nam files: NAM Core's outputs (shared/conformance/nam), bit-exact block-partition
// invariance, prewarm equal to silence processed, slim selection, two interleaved instances and
// one-line errors for malformed files.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common.hpp"
#include "rtnt.hpp"

namespace {

std::string dir;

std::vector<float> read_f32(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    CHECK(f.good());
    f.seekg(0, std::ios::end);
    const std::size_t n = static_cast<std::size_t>(f.tellg()) / 4;
    f.seekg(0);
    std::vector<float> v(n);
    f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * 4));
    return v;
}

std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    CHECK(f.good());
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::vector<float> run(rtnt::Model& m, const std::vector<float>& x, const std::vector<int>& sizes) {
    m.reset();
    std::vector<float> y(x.size());
    std::size_t pos = 0, k = 0;
    while (pos < x.size()) {
        const int n = static_cast<int>(std::min<std::size_t>(sizes[k++ % sizes.size()], x.size() - pos));
        m.process(x.data() + pos, y.data() + pos, n);
        pos += n;
    }
    return y;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    CHECK(a.size() == b.size());
    float e = 0.0f;
    for (std::size_t i = 0; i < a.size(); ++i) e = std::max(e, std::fabs(a[i] - b[i]));
    return e;
}

struct Case {
    const char* model;
    const char* outputs;
    double slim;  // < 0: default submodel
};

void test_conformance() {
    const Case cases[] = {{"wavenet_a1_standard.nam", "wavenet_a1_standard", -1}, {"A2.nam", "A2_full", -1},
                          {"A2.nam", "A2_lite", 0.0},                         {"lstm.nam", "lstm", -1},
                          {"wavenet.nam", "wavenet", -1}};
    const auto x = read_f32(dir + "/vectors/inputs/guitar_di_10s_2s.f32");
    for (const Case& c : cases) {
        rtnt::LoadOptions options;
        if (c.slim >= 0) options.slim = c.slim;
        rtnt::Model m = rtnt::load_model_file(dir + "/models/" + c.model, options);
        for (const char* variant : {"b64", "b1", "b64_noprewarm"}) {
            const std::string v = variant;
            m.set_prewarm_on_reset(v != "b64_noprewarm");
            const int block = v == "b1" ? 1 : 64;
            m.prepare(block);
            const auto want = read_f32(dir + "/vectors/outputs/" + c.outputs + "/guitar_di_10s_2s__" + v + ".f32");
            float peak = 0.0f;
            for (float w : want) peak = std::max(peak, std::fabs(w));
            const float e = max_abs_diff(run(m, x, {block}), want);
            std::printf("nam conformance %s %s: max abs error %.3g (peak %.3g)\n", c.outputs, variant, e, peak);
            CHECK(e <= std::max(5e-5f, 1e-4f * peak));
        }
    }
}

void test_partitions_and_prewarm() {
    // wavenet.nam runs the two-rows-per-register path of arrays with at most 4 channels (AVX2 builds).
    for (const char* name : {"wavenet_a1_standard.nam", "A2.nam", "wavenet.nam", "lstm.nam"}) {
        rtnt::Model m = rtnt::load_model_file(dir + "/models/" + name);
        m.prepare(4096);
        const auto x = test_signal(12000, 5);
        const auto ref = run(m, x, {4096});
        std::mt19937 rng(11);
        std::vector<int> random_sizes;
        for (int i = 0; i < 100; ++i) random_sizes.push_back(1 + static_cast<int>(rng() % 4096));
        for (const auto& sizes : std::vector<std::vector<int>>{{1}, {7}, {64}, {128}, {1000}, random_sizes})
            CHECK(max_abs_diff(run(m, x, sizes), ref) == 0.0f);
        // Prewarm = a zeroed model that first heard prewarm_samples of silence, bit for bit.
        rtnt::Model cold = rtnt::load_model_file(dir + "/models/" + name);
        cold.set_prewarm_on_reset(false);
        cold.prepare(256);
        std::vector<float> zeros(static_cast<std::size_t>(m.info().prewarm_samples), 0.0f), sink(zeros.size());
        cold.process(zeros.data(), sink.data(), static_cast<int>(zeros.size()));
        std::vector<float> y(x.size());
        cold.process(x.data(), y.data(), static_cast<int>(x.size()));
        CHECK(max_abs_diff(y, ref) == 0.0f);
        std::printf("nam partitions and prewarm %s: ok\n", name);
    }
}

void test_two_instances() {
    rtnt::Model a = rtnt::load_model_file(dir + "/models/wavenet_a1_standard.nam");
    rtnt::Model b = rtnt::load_model_file(dir + "/models/wavenet_a1_standard.nam");
    a.prepare(300);
    b.prepare(300);
    const auto x = test_signal(9000, 1), other = test_signal(9000, 2);
    const auto ref_a = run(a, x, {300}), ref_b = run(b, other, {300});
    a.reset();
    b.reset();
    std::vector<float> ya(x.size()), yb(x.size());
    for (std::size_t pos = 0; pos < x.size(); pos += 77) {
        const int n = static_cast<int>(std::min<std::size_t>(77, x.size() - pos));
        a.process(x.data() + pos, ya.data() + pos, n);
        b.process(other.data() + pos, yb.data() + pos, n);
    }
    CHECK(max_abs_diff(ya, ref_a) == 0.0f && max_abs_diff(yb, ref_b) == 0.0f);
    std::printf("nam two instances: ok\n");
}

void expect_error(const std::string& text, const std::string& fragment) {
    try {
        rtnt::load_model(text);
    } catch (const rtnt::ModelError& e) {
        const std::string msg = e.what();
        if (msg.find(fragment) == std::string::npos || msg.find('\n') != std::string::npos) {
            std::fprintf(stderr, "message '%s' lacks '%s'\n", msg.c_str(), fragment.c_str());
            std::exit(1);
        }
        return;
    }
    std::fprintf(stderr, "no error for a case expecting '%s'\n", fragment.c_str());
    std::exit(1);
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
    const std::size_t p = s.find(from);
    CHECK(p != std::string::npos);
    return s.replace(p, from.size(), to);
}

void test_errors() {
    const std::string tiny = read_text(dir + "/models/wavenet.nam");
    CHECK(rtnt::load_model(tiny).info().prewarm_samples == 23);
    expect_error(replace(tiny, "\"version\": \"0.5.4\"", "\"version\": \"0.4.0\""), "older than 0.5.0");
    expect_error(replace(tiny, "\"version\": \"0.5.4\"", "\"version\": \"0.8.1\""), "newer than 0.7.x");
    expect_error(replace(tiny, "\"version\": \"0.5.4\"", "\"version\": \"v1\""), "MAJOR.MINOR.PATCH");
    expect_error(replace(tiny, "\"activation\": \"Tanh\"", "\"activation\": \"Mish\""), "unknown activation 'Mish'");
    expect_error(replace(tiny, "\"channels\": 3,", ""), "config.layers[0]: missing key 'channels'");
    expect_error(replace(tiny, "\"dilations\": [1, 2]", "\"dilations\": [1, -2]"), "config.layers[0].dilations[1]: is -2");
    expect_error(replace(tiny, "\"dilations\": [1, 2]", "\"dilations\": [1]"), "weights: holds 131 values, but the config needs");
    expect_error(replace(tiny, "\"gated\": false", "\"gated\": 0"), "gated: must be a boolean, got a number");
    expect_error(replace(tiny, "\"architecture\": \"WaveNet\"", "\"architecture\": \"Linear\""), "'Linear' is a NAM architecture rtnt does not run");
    expect_error(replace(tiny, "\"head_scale\": 0.02", "\"head_scale\": \"0.02\""), "config.head_scale: must be a number");
    // Too few weights: the count check refuses the file before anything reads past the end.
    const std::size_t open = tiny.find("\"weights\": [") + 12;
    const std::size_t comma = tiny.find(',', open);
    expect_error(tiny.substr(0, open) + tiny.substr(comma + 1), "weights: holds 130 values, but the config needs 131");
    expect_error(tiny.substr(0, open) + "1e999, " + tiny.substr(open), "weights[0]: is infinite");
    rtnt::LoadOptions slim;
    slim.slim = 0.0;
    try {
        rtnt::load_model(tiny, slim);
        CHECK(false);
    } catch (const rtnt::ModelError& e) {
        CHECK(std::string(e.what()).find("not slimmable") != std::string::npos);
    }
    std::printf("nam errors: ok\n");
}

}  // namespace

int main(int argc, char** argv) {
    CHECK(argc == 2);
    dir = argv[1];
    test_conformance();
    test_partitions_and_prewarm();
    test_two_instances();
    test_errors();
    std::printf("nam tests passed\n");
    return 0;
}
