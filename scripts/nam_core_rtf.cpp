// NAM Core's real-time factor on one .nam file, for scripts/bench_nam_side_by_side.py (built there against
// a NAM Core checkout; NAM Core is not part of rtnt). Reads mono float32 samples, runs them through
// DSP::process in blocks of BLOCK frames after Reset() (which prewarms), and prints one RTF per run:
//
//     nam_core_rtf MODEL.nam INPUT.f32 BLOCK RUNS [--exact-tanh] [--slim VALUE]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "NAM/activations.h"
#include "NAM/dsp.h"
#include "NAM/get_dsp.h"
#include "NAM/slimmable.h"

int main(int argc, char** argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: nam_core_rtf MODEL.nam INPUT.f32 BLOCK RUNS [--exact-tanh] [--slim VALUE]\n");
        return 2;
    }
    const int block = std::atoi(argv[3]), runs = std::atoi(argv[4]);
    bool fast_tanh = true;
    double slim = -1.0;
    for (int i = 5; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--exact-tanh")) fast_tanh = false;
        else if (!std::strcmp(argv[i], "--slim") && i + 1 < argc) slim = std::atof(argv[++i]);
    }
    if (fast_tanh) nam::activations::Activation::enable_fast_tanh();  // before get_dsp, as NAM's plugin does
    std::ifstream file(argv[2], std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    std::vector<float> samples(bytes.size() / sizeof(float));
    std::memcpy(samples.data(), bytes.data(), samples.size() * sizeof(float));
    std::vector<double> x(samples.begin(), samples.end()), y(x.size());
    auto model = nam::get_dsp(std::filesystem::path(argv[1]));
    if (slim >= 0.0) {
        auto* slimmable = dynamic_cast<nam::SlimmableModel*>(model.get());
        if (!slimmable) {
            std::fprintf(stderr, "%s is not slimmable\n", argv[1]);
            return 2;
        }
        slimmable->SetSlimmableSize(slim);
    }
    const long n = static_cast<long>(x.size()) / block * block;
    for (int run = 0; run < runs; ++run) {
        model->Reset(48000.0, block);
        const auto start = std::chrono::steady_clock::now();
        for (long i = 0; i < n; i += block) {
            double* in = x.data() + i;
            double* out = y.data() + i;
            model->process(&in, &out, block);
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("%.4f\n", n / 48000.0 / seconds);
    }
    return y[n / 2] > 1e30;  // keeps the output live
}
