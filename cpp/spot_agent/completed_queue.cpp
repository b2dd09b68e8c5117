#include "spot_agent/completed_queue.h"

#include <utility>

namespace hkrt {

CompletedBars* CompletedQueue::sink() {
  if (!collecting_) return nullptr;
  if (bars_.size() > max_bars_) {
    const size_t over = bars_.size() - max_bars_;
    bars_.erase(bars_.begin(), bars_.begin() + static_cast<std::ptrdiff_t>(over));
    dropped_ += over;
  }
  return &bars_;
}

CompletedBars CompletedQueue::take() {
  CompletedBars out;
  out.swap(bars_);
  return out;
}

}  // namespace hkrt
