// Scoped flush-to-zero / denormals-are-zero for the duration of a process() call.
#pragma once

#if defined(__SSE__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 1)
#include <xmmintrin.h>
#define RTNT_HAS_MXCSR 1
#endif

#include <cstdint>

namespace rtnt {

/// Sets FTZ and DAZ on construction and restores the caller's floating-point mode on destruction.
/// On x86 this writes MXCSR; on AArch64 the FZ bit of FPCR; elsewhere it does nothing.
class DenormalGuard {
public:
    DenormalGuard() noexcept {
#if defined(RTNT_HAS_MXCSR)
        saved_ = _mm_getcsr();
        _mm_setcsr(saved_ | 0x8040u);  // FTZ (bit 15) | DAZ (bit 6)
#elif defined(__aarch64__)
        std::uint64_t fpcr;
        __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
        saved_ = fpcr;
        __asm__ __volatile__("msr fpcr, %0" : : "r"(fpcr | (std::uint64_t(1) << 24)));
#endif
    }
    ~DenormalGuard() {
#if defined(RTNT_HAS_MXCSR)
        _mm_setcsr(static_cast<unsigned int>(saved_));
#elif defined(__aarch64__)
        __asm__ __volatile__("msr fpcr, %0" : : "r"(saved_));
#endif
    }
    DenormalGuard(const DenormalGuard&) = delete;
    DenormalGuard& operator=(const DenormalGuard&) = delete;

private:
    [[maybe_unused]] std::uint64_t saved_ = 0;
};

}  // namespace rtnt
