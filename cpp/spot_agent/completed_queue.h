// The bars completed since a consumer last took them: what the agent hands to its hooks and
// its store after every message, and what a tool collecting bars itself reads.
//
// Not thread-safe: the owner calls it under the lock its ingest calls take.
//
// Memory: bars are collected in one buffer and handed over in a second one (take_reusing):
// the two swap at every take and keep their capacity, so a minute boundary, where every symbol
// completes a bar at once, neither allocates nor touches fresh pages once the buffers have
// grown, or from the start after reserve().
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
  // The same, without allocating: the bars are handed over in the queue's second buffer, which
  // the queue collects into again from the next take (the reference is valid until then).
  const CompletedBars& take_reusing();
  // Room for `bars` waiting bars in both buffers, their pages touched now (not at the first
  // minute boundary).
  void reserve(size_t bars);
  size_t size() const { return bars_.size(); }
  uint64_t dropped() const { return dropped_; }

 private:
  size_t max_bars_;
  bool collecting_ = false;
  CompletedBars bars_;
  CompletedBars handed_;  // what take_reusing() handed over last
  uint64_t dropped_ = 0;
};

}  // namespace hkrt
