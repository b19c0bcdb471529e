// A minimal LV2 host that proves an exported plugin's run() allocates and frees nothing.
//
// malloc, calloc, realloc and free are replaced for the whole process (glibc), so every heap call
// the plugin makes, its own or through libstdc++'s operator new, is counted while run() executes.
// The host loads the bundle's binary with dlopen, offers urid:map and options (maxBlockLength 256,
// nominalBlockLength 128), and calls run() with block sizes below, at and above that maximum, in
// place and not, while changing both gains and toggling bypass, and moving the knob ports of a
// conditioned model (within, at and beyond their range, and NaN) when their count is given. It
// prints "rt_check: ok" and exits 0 when run() made no heap call, kept its output finite and
// reported latency 0.
//
//   rtnt_lv2_rt_check <bundle dir> [number of knob ports]
#include <dlfcn.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../lv2_abi.hpp"

namespace {
std::atomic<bool> g_armed{false};
std::atomic<long> g_heap_calls{0};
inline void count() noexcept {
    if (g_armed.load(std::memory_order_relaxed)) g_heap_calls.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

#if defined(__GLIBC__)
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void __libc_free(void*);
void* malloc(std::size_t n) {
    count();
    return __libc_malloc(n);
}
void* calloc(std::size_t a, std::size_t b) {
    count();
    return __libc_calloc(a, b);
}
void* realloc(void* p, std::size_t n) {
    count();
    return __libc_realloc(p, n);
}
void free(void* p) {
    if (p) count();
    __libc_free(p);
}
}
#endif

namespace {

std::vector<std::string>& uri_table() {
    static std::vector<std::string> table;
    return table;
}

LV2_URID map_uri(void*, const char* uri) {
    auto& table = uri_table();
    for (std::size_t i = 0; i < table.size(); ++i)
        if (table[i] == uri) return static_cast<LV2_URID>(i + 1);
    table.emplace_back(uri);
    return static_cast<LV2_URID>(table.size());
}

enum Port : uint32_t { kIn = 0, kOut, kInputGain, kOutputGain, kEnabled, kLatency, kFirstKnob };

int fail(const std::string& what) {
    std::fprintf(stderr, "rt_check: FAIL: %s\n", what.c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
#if !defined(__GLIBC__)
    std::puts("rt_check: skipped (heap counting needs glibc)");
    return 77;
#endif
    if (argc != 2 && argc != 3) return fail("usage: rtnt_lv2_rt_check <bundle dir> [number of knob ports]");
    const int knobs = argc == 3 ? std::atoi(argv[2]) : 0;
    std::string bundle = argv[1];
    if (bundle.back() != '/') bundle += '/';
    void* lib = dlopen((bundle + "rtnt_model.so").c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) return fail(std::string("dlopen: ") + dlerror());
    using DescriptorFn = const LV2_Descriptor* (*)(uint32_t);
    auto get = reinterpret_cast<DescriptorFn>(dlsym(lib, "lv2_descriptor"));
    if (!get || !get(0) || get(1)) return fail("the binary must export lv2_descriptor with exactly one plugin");
    const LV2_Descriptor* d = get(0);

    LV2_URID_Map map{nullptr, map_uri};
    const int32_t max_block = 256, nominal_block = 128;
    const LV2_URID atom_int = map_uri(nullptr, lv2uri::kAtomInt);
    const LV2_Options_Option options[] = {
        {LV2_OPTIONS_INSTANCE, 0, map_uri(nullptr, lv2uri::kMaxBlockLength), sizeof(int32_t), atom_int, &max_block},
        {LV2_OPTIONS_INSTANCE, 0, map_uri(nullptr, lv2uri::kNominalBlockLength), sizeof(int32_t), atom_int, &nominal_block},
        {LV2_OPTIONS_INSTANCE, 0, 0, 0, 0, nullptr},
    };
    const LV2_Feature map_feature{lv2uri::kUridMap, &map};
    const LV2_Feature options_feature{lv2uri::kOptions, const_cast<LV2_Options_Option*>(options)};
    const LV2_Feature* features[] = {&map_feature, &options_feature, nullptr};
    LV2_Handle h = d->instantiate(d, 48000.0, bundle.c_str(), features);
    if (!h) return fail("instantiate returned null");

    const int n = 48000;
    std::vector<float> in(n), out(n), scratch(n);
    for (int i = 0; i < n; ++i)
        in[i] = 0.4f * std::sin(2.0f * 3.14159265f * 110.0f * i / 48000.0f) * std::exp(-2.0f * i / 48000.0f);
    float input_gain = 0.0f, output_gain = 0.0f, enabled = 1.0f, latency = -1.0f;
    d->connect_port(h, kInputGain, &input_gain);
    d->connect_port(h, kOutputGain, &output_gain);
    d->connect_port(h, kEnabled, &enabled);
    d->connect_port(h, kLatency, &latency);
    std::vector<float> knob(static_cast<std::size_t>(knobs), 0.5f);
    for (int j = 0; j < knobs; ++j) d->connect_port(h, kFirstKnob + j, &knob[j]);
    d->activate(h);

    const int sizes[] = {1, 7, 128, 256, 3, 200, 256, 64, 1000, 31};  // 1000 > the announced maximum
    long calls = 0;
    for (int pos = 0, k = 0; pos < n; ++k) {
        const int m = std::min(sizes[k % 10], n - pos);
        switch (k) {  // control changes mid-stream
            case 20: output_gain = 6.0f; break;
            case 40: input_gain = -3.0f; break;
            case 60: enabled = 0.0f; break;
            case 90: enabled = 1.0f; break;
            case 120: output_gain = -24.0f; break;
            default: break;
        }
        if (k % 15 == 7)  // knob moves: within, at and beyond the range, and NaN
            for (int j = 0; j < knobs; ++j) {
                const float moves[] = {0.2f, 0.9f, 1.0f, -5.0f, std::numeric_limits<float>::quiet_NaN(), 0.7f};
                knob[j] = moves[(k / 15 + j) % 6];
            }
        const bool in_place = (k % 3 == 2);
        float* dst = in_place ? scratch.data() + pos : out.data() + pos;
        if (in_place) std::memcpy(dst, in.data() + pos, sizeof(float) * m);
        d->connect_port(h, kIn, in_place ? dst : in.data() + pos);
        d->connect_port(h, kOut, dst);
        g_armed.store(true);
        d->run(h, static_cast<uint32_t>(m));
        g_armed.store(false);
        if (in_place) std::memcpy(out.data() + pos, dst, sizeof(float) * m);
        pos += m;
        ++calls;
    }
    d->deactivate(h);
    d->cleanup(h);

    const long heap = g_heap_calls.load();
    if (heap != 0) return fail("run() made " + std::to_string(heap) + " heap call(s) over " + std::to_string(calls) + " calls");
    for (float v : out)
        if (!std::isfinite(v)) return fail("non-finite output");
    if (latency != 0.0f) return fail("latency port reads " + std::to_string(latency) + ", expected 0");
    std::printf("rt_check: ok (%ld run() calls, block sizes 1..1000, gain, bypass and %d knob(s) changing, no heap calls)\n",
                calls, knobs);
    return 0;
}
