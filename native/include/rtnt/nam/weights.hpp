// A bounds-checked cursor over a .nam file's flat weight list.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "../model/error.hpp"

namespace rtnt {
namespace nam {

/// Hands out the weights in file order. The loaders check the total count against the config
/// before building anything, so running out is a loader bug; it still fails cleanly, never reads
/// past the end.
class WeightCursor {
public:
    explicit WeightCursor(const std::vector<float>& weights) noexcept : w_(weights) {}

    float next() {
        if (pos_ >= w_.size())
            throw ModelError("'weights' ran out after " + std::to_string(w_.size()) + " values; the config needs more");
        return w_[pos_++];
    }

    std::size_t used() const noexcept { return pos_; }
    std::size_t size() const noexcept { return w_.size(); }

private:
    const std::vector<float>& w_;
    std::size_t pos_ = 0;
};

}  // namespace nam
}  // namespace rtnt
