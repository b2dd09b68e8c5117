// Which messages of each publisher's collection cycle have arrived, and when a cycle is over.
//
// A publisher sends a whole-market pass (a cycle) as part_count messages with one cycle_id.
// A cycle is over when all its parts were processed, when the same publisher begins another
// cycle (the missing parts are not coming: it is reported incomplete), or when too many
// cycles are open at once (publishers that vanished mid-cycle; see max_open).  Each cycle
// over is reported once, with what arrived of it, so the agent can move the market clock to
// its market time and tell the hooks.  Messages are accounted one at a time, in arrival order.
//
// Bounds and policy: at most `max_open` cycles open over all publishers (the oldest opened
// is closed, counted as abandoned: reported when it belongs to the publisher of the message
// being accounted, dropped otherwise); at most `max_parts` distinct parts remembered per
// cycle (a cycle that reaches it is over); `max_publishers` publisher ids remembered for
// "first message of this publisher" (the least recently heard forgotten).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

#include "spot_agent/wire.h"

namespace hkrt {

struct CycleSummary {
  uint64_t publisher_id = 0;
  uint64_t cycle_id = 0;
  uint32_t parts_expected = 0;
  uint32_t parts_received = 0;
  uint64_t spots = 0;
  uint64_t accepted = 0;
  int64_t first_send_us = 0;   // send time of the first part that arrived (UTC epoch µs)
  int64_t market_time_ms = 0;  // the largest believed market time of its parts (UTC epoch ms, 0 = none)
  bool joined_mid_cycle = false;  // the first message heard of its publisher was not part 0
  bool complete() const { return parts_received >= parts_expected; }
};

struct CycleCounters {
  uint64_t cycles = 0;             // cycles reported over
  uint64_t incomplete_cycles = 0;  // of those, with parts missing
  uint64_t abandoned_cycles = 0;   // closed because too many were open
};

struct CycleConfig {
  size_t max_open = 256;
  uint32_t max_parts = 65536;
  size_t max_publishers = 4096;
};

class CycleTracker {
 public:
  explicit CycleTracker(CycleConfig config = CycleConfig()) : config_(config) {}

  // Accounts one processed data message (spots and accepted counts, the market time the
  // agent believes); appends the cycles now over to *over, oldest first.
  void add(const wire::Header& h, int64_t market_time_ms, size_t spots, size_t accepted,
           std::vector<CycleSummary>* over);
  size_t open() const { return open_.size(); }
  const CycleCounters& counters() const { return counters_; }

 private:
  struct Open {
    CycleSummary summary;
    std::vector<uint32_t> parts;  // sorted, distinct
  };
  using OpenList = std::list<Open>;  // oldest opened first

  void close(OpenList::iterator it, std::vector<CycleSummary>* over);
  bool first_from(uint64_t publisher_id);

  CycleConfig config_;
  OpenList open_;
  std::unordered_map<uint64_t, std::list<uint64_t>::iterator> publishers_;  // id -> place in heard_
  std::list<uint64_t> heard_;  // most recently heard first
  CycleCounters counters_;
};

}  // namespace hkrt
