#include "spot_agent/completed_queue.h"

#include <algorithm>
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

const CompletedBars& CompletedQueue::take_reusing() {
  handed_.clear();
  handed_.swap(bars_);
  return handed_;
}

void CompletedQueue::reserve(size_t bars) {
  bars = std::min(bars, max_bars_);
  for (CompletedBars* buffer : {&bars_, &handed_}) {
    if (buffer->capacity() >= bars) continue;
    const size_t waiting = buffer->size();
    buffer->reserve(bars);
    buffer->resize(bars);  // writes every element: the pages are faulted in here
    buffer->resize(waiting);
  }
}

}  // namespace hkrt
