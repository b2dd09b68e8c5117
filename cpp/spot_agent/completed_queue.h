// The bars completed since a consumer last took them: what the agent hands to its hooks and
// its store after every message, and what a tool collecting bars itself reads.
//
// Not thread-safe: the owner calls it under the lock its ingest calls take.
//
// Bound and policy: while collecting, at most `max_bars` bars wait (plus what one call adds:
// the bound is enforced when the next call asks for the sink).  Past it the oldest waiting bars
// are dropped and counted (`dropped`): every bar is still in its series, only the notice of
// its completion is lost.  The agent takes the queue after every message, so only a consumer
// that turned collecting on and never takes reaches the bound.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kdata/engine.h"

namespace hkrt {

class CompletedQueue {
 public:
  explicit CompletedQueue(size_t max_bars = 10'000'000) : max_bars_(max_bars) {}

  bool collecting() const { return collecting_; }
  void set_collecting(bool on) { collecting_ = on; }
  // Where an ingest or advance call reports the bars it completes: null when not collecting.
  CompletedBars* sink();
  // Every bar waiting, oldest first; the queue is empty afterwards.
  CompletedBars take();
  size_t size() const { return bars_.size(); }
  uint64_t dropped() const { return dropped_; }

 private:
  size_t max_bars_;
  bool collecting_ = false;
  CompletedBars bars_;
  uint64_t dropped_ = 0;
};

}  // namespace hkrt
