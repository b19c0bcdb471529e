// Cache-line aligned float storage for weights, state and scratch buffers.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace rtnt {

/// Allocator that returns 64-byte aligned memory (one cache line, one AVX-512 register).
template <typename T>
struct AlignedAllocator {
    using value_type = T;
    static constexpr std::size_t alignment = 64;

    AlignedAllocator() noexcept = default;
    template <typename U>
    AlignedAllocator(const AlignedAllocator<U>&) noexcept {}

    T* allocate(std::size_t n) {
        return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(alignment)));
    }
    void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t(alignment)); }

    template <typename U>
    bool operator==(const AlignedAllocator<U>&) const noexcept { return true; }
    template <typename U>
    bool operator!=(const AlignedAllocator<U>&) const noexcept { return false; }
};

using FloatVec = std::vector<float, AlignedAllocator<float>>;

/// Channel count rounded up to a whole number of 8-float SIMD lanes: the row stride of activations.
inline int padded(int channels) noexcept { return (channels + 7) / 8 * 8; }

}  // namespace rtnt
