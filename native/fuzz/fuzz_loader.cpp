// libFuzzer harness: any byte string given to the loader either fails with ModelError or yields a
// model that prepares and processes audio. Build with -DRTNT_BUILD_FUZZ=ON using clang, then run
//   ./rtnt_fuzz_loader -max_len=4096 native/fuzz/corpus
// The C++ test rtnt_test_runtime replays the corpus and every crash saved in fuzz/regressions/.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "rtnt.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        rtnt::Model m = rtnt::load_model(std::string_view(reinterpret_cast<const char*>(data), size));
        m.prepare(16);
        std::vector<float> x(static_cast<std::size_t>(40) * m.in_size());
        std::vector<float> y(static_cast<std::size_t>(40) * m.out_size());
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 17) / 8.0f - 1.0f;
        m.process(x.data(), y.data(), 3);
        m.process(x.data(), y.data(), 37);
        m.reset();
        m.process(x.data(), y.data(), 40);
        // A conditioned model's path: mono samples plus K control values per sample, then the defaults.
        std::vector<float> c(static_cast<std::size_t>(40) * m.num_controls());
        for (std::size_t i = 0; i < c.size(); ++i) c[i] = static_cast<float>(i % 5) / 4.0f;
        m.process(x.data(), y.data(), 40, c.data());
        m.process(x.data(), y.data(), 7, nullptr);
    } catch (const rtnt::ModelError&) {
    }
    return 0;
}
