#include "spot_agent/cycle_tracker.h"

#include <algorithm>

namespace hkrt {

bool CycleTracker::first_from(uint64_t publisher_id) {
  auto it = publishers_.find(publisher_id);
  if (it != publishers_.end()) {
    heard_.splice(heard_.begin(), heard_, it->second);
    return false;
  }
  heard_.push_front(publisher_id);
  publishers_[publisher_id] = heard_.begin();
  if (heard_.size() > config_.max_publishers) {
    publishers_.erase(heard_.back());
    heard_.pop_back();
  }
  return true;
}

void CycleTracker::close(OpenList::iterator it, std::vector<CycleSummary>* over) {
  CycleSummary& s = it->summary;
  s.parts_received = static_cast<uint32_t>(it->parts.size());
  ++counters_.cycles;
  if (!s.complete()) ++counters_.incomplete_cycles;
  if (over != nullptr) over->push_back(s);
  open_.erase(it);
}

void CycleTracker::add(const wire::Header& h, int64_t market_time_ms, size_t spots, size_t accepted,
                       std::vector<CycleSummary>* over) {
  const bool first = first_from(h.publisher_id);
  OpenList::iterator mine = open_.end();
  for (auto it = open_.begin(); it != open_.end();) {
    auto next = std::next(it);
    if (it->summary.publisher_id == h.publisher_id) {
      if (it->summary.cycle_id == h.cycle_id) mine = it;
      else close(it, over);  // a newer cycle began: the old one is over
    }
    it = next;
  }
  if (mine == open_.end()) {
    while (open_.size() >= config_.max_open) {  // publishers that vanished mid-cycle: the oldest is over
      ++counters_.abandoned_cycles;
      auto oldest = open_.begin();
      if (oldest->summary.publisher_id == h.publisher_id) {
        close(oldest, over);
      } else {
        open_.erase(oldest);  // not this publisher's: nobody waits for its report now
      }
    }
    Open o;
    o.summary.publisher_id = h.publisher_id;
    o.summary.cycle_id = h.cycle_id;
    o.summary.parts_expected = std::max<uint32_t>(h.part_count, 1);
    o.summary.first_send_us = h.send_time_us;
    o.summary.market_time_ms = market_time_ms;
    o.summary.joined_mid_cycle = first && h.part_index > 0;
    mine = open_.insert(open_.end(), std::move(o));
  }
  Open& o = *mine;
  auto at = std::lower_bound(o.parts.begin(), o.parts.end(), h.part_index);
  if (at == o.parts.end() || *at != h.part_index) o.parts.insert(at, h.part_index);
  o.summary.spots += spots;
  o.summary.accepted += accepted;
  o.summary.market_time_ms = std::max(o.summary.market_time_ms, market_time_ms);
  if (o.parts.size() >= o.summary.parts_expected || o.parts.size() >= config_.max_parts) close(mine, over);
}

}  // namespace hkrt
