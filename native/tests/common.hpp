// Shared helpers of the C++ tests: checks, CSV reading and a random conv-stack model as JSON text.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            std::exit(1);                                                            \
        }                                                                            \
    } while (0)

inline std::vector<float> read_csv(const std::string& path) {
    std::ifstream f(path);
    CHECK(f.good());
    std::vector<float> v;
    double x;
    while (f >> x) v.push_back(static_cast<float>(x));
    return v;
}

/// JSON text of a causal conv1d stack 1 + controls -> channels x len(dilations) -> 1 with random
/// weights; with controls > 0 a conditioned model whose knobs k0, k1, .. range over [0, 1].
inline std::string conv_stack_json(int channels, const std::vector<int>& dilations, int kernel, unsigned seed,
                                   int controls = 0) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::ostringstream s;
    s.precision(9);
    s << "{\"in_shape\":[null,null," << 1 + controls << "],\"controls\":[";
    for (int j = 0; j < controls; ++j)
        s << (j ? "," : "") << "{\"name\":\"k" << j << "\",\"minimum\":0,\"maximum\":1,\"default\":0.5}";
    s << "],\"layers\":[";
    int cin = 1 + controls;
    auto layer = [&](int cout, int k, int d, const char* act) {
        const float scale = 1.0f / std::sqrt(float(k * cin));
        s << "{\"type\":\"conv1d\",\"activation\":\"" << act << "\",\"shape\":[null,null," << cout
          << "],\"kernel_size\":[" << k << "],\"dilation\":[" << d << "],\"groups\":1,\"weights\":[[";
        for (int a = 0; a < k; ++a) {
            s << (a ? ",[" : "[");
            for (int i = 0; i < cin; ++i) {
                s << (i ? ",[" : "[");
                for (int o = 0; o < cout; ++o) s << (o ? "," : "") << nd(rng) * scale;
                s << "]";
            }
            s << "]";
        }
        s << "],[";
        for (int o = 0; o < cout; ++o) s << (o ? "," : "") << 0.05f * nd(rng);
        s << "]]}";
        cin = cout;
    };
    for (std::size_t l = 0; l < dilations.size(); ++l) {
        layer(channels, kernel, dilations[l], "tanh");
        s << ",";
    }
    layer(1, 1, 1, "");
    s << "]}";
    return s.str();
}

/// A deterministic test signal with some transients.
inline std::vector<float> test_signal(int n, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-0.3f, 0.3f);
    std::vector<float> x(n);
    for (int i = 0; i < n; ++i) x[i] = 0.5f * std::sin(0.01f * i) * std::sin(0.0003f * i) + u(rng) * (i % 997 < 40);
    return x;
}
