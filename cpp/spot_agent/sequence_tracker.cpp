#include "sequence_tracker.h"

namespace hkrt {

const char* sequence_status_name(SequenceStatus s) {
  switch (s) {
    case SequenceStatus::Unnumbered: return "unnumbered";
    case SequenceStatus::First: return "first";
    case SequenceStatus::InOrder: return "in_order";
    case SequenceStatus::Gap: return "gap";
    case SequenceStatus::Late: return "late";
    case SequenceStatus::Duplicate: return "duplicate";
    case SequenceStatus::Restart: return "restart";
    case SequenceStatus::Anomaly: return "anomaly";
    case SequenceStatus::Heartbeat: return "heartbeat";
  }
  return "unknown";
}

SequenceTracker::Session& SequenceTracker::session(const Key& key, bool* created) {
  auto it = sessions_.find(key);
  *created = it == sessions_.end();
  if (!*created) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);  // heard now
    return it->second;
  }
  if (sessions_.size() >= config_.max_sessions && !lru_.empty()) {
    // Forget the session heard least recently; its holes can no longer be filled.
    const Key old = lru_.back();
    lru_.pop_back();
    auto victim = sessions_.find(old);
    for (const auto& r : victim->second.missing) counters_.forgotten_messages += r.second - r.first + 1;
    sessions_.erase(victim);
    auto newest = newest_epoch_.find(old.id);
    if (newest != newest_epoch_.end() && newest->second == old.epoch) newest_epoch_.erase(newest);
    ++counters_.forgotten_sessions;
  }
  lru_.push_front(key);
  Session& s = sessions_[key];
  s.lru = lru_.begin();
  return s;
}

void SequenceTracker::add_missing(Session& s, uint64_t first, uint64_t last, SequenceVerdict* v) {
  if (last < first) return;
  v->gap_first = first;
  v->gap_last = last;
  ++counters_.gaps;
  counters_.missing_messages += last - first + 1;
  s.missing.emplace(first, last);
  while (s.missing.size() > config_.max_ranges) {  // the oldest hole is the least likely to be filled
    auto oldest = s.missing.begin();
    counters_.forgotten_messages += oldest->second - oldest->first + 1;
    s.missing.erase(oldest);
  }
}

bool SequenceTracker::take_missing(Session& s, uint64_t seq) {
  auto it = s.missing.upper_bound(seq);
  if (it == s.missing.begin()) return false;
  --it;
  const uint64_t first = it->first, last = it->second;
  if (seq > last) return false;
  s.missing.erase(it);
  if (first < seq) s.missing.emplace(first, seq - 1);
  if (seq < last) s.missing.emplace(seq + 1, last);
  ++counters_.recovered_messages;
  return true;
}

bool SequenceTracker::confirmed_jump(Session& s, uint64_t seq) {
  s.anomaly_run = (s.anomaly_run > 0 && seq == s.anomaly_next) ? s.anomaly_run + 1 : 1;
  s.anomaly_next = seq + 1;
  if (s.anomaly_run >= config_.confirm_run) {
    s.anomaly_run = 0;
    return true;
  }
  ++counters_.anomalies;
  return false;
}

SequenceVerdict SequenceTracker::accept(const wire::Header& h) {
  SequenceVerdict v;
  const uint64_t seq = h.sequence;
  if (h.heartbeat) ++counters_.heartbeats;
  if (seq == 0) {  // not numbered: nothing to check against
    v.status = h.heartbeat ? SequenceStatus::Heartbeat : SequenceStatus::Unnumbered;
    if (!h.heartbeat) ++counters_.unnumbered;
    return v;
  }
  const Key key{h.publisher_id, h.session_epoch};
  bool created = false;
  Session& s = session(key, &created);
  const bool fresh = s.highest == 0;

  // Which session of the publisher is this?  A new epoch is a restart; an older one a straggler.
  bool restart = false;
  auto newest = newest_epoch_.find(h.publisher_id);
  if (newest == newest_epoch_.end()) {
    newest_epoch_.emplace(h.publisher_id, h.session_epoch);
  } else if (h.session_epoch > newest->second) {
    newest->second = h.session_epoch;
    restart = created;
  } else if (h.session_epoch < newest->second) {
    ++counters_.old_session_messages;
  }
  counters_.publishers = newest_epoch_.size();

  // Without epochs, sequence 1 after others is a restart -- unless sequence 1 is a hole
  // being filled (a late or retransmitted first message).
  if (!fresh && !h.heartbeat && seq == 1 && h.session_epoch == 0) {
    const bool filling_hole = !s.missing.empty() && s.missing.begin()->first == 1;
    if (!filling_hole) {
      for (const auto& r : s.missing) counters_.forgotten_messages += r.second - r.first + 1;
      s.highest = 0;
      s.missing.clear();
      s.anomaly_run = 0;
      restart = true;
    }
  }

  if (s.highest == 0) {
    // The session's first message heard: everything before it is missing (a late join, or a
    // restart whose first messages were lost).  A heartbeat's own sequence was sent too.
    if (seq > config_.window && !confirmed_jump(s, seq)) {
      v.status = SequenceStatus::Anomaly;
      return v;
    }
    const uint64_t last_missing = h.heartbeat ? seq : seq - 1;
    if (last_missing >= 1) {
      add_missing(s, 1, last_missing, &v);
      if (!restart) ++counters_.late_joins;
    }
    s.highest = seq;
    if (restart) ++counters_.publisher_restarts;
    v.status = h.heartbeat ? SequenceStatus::Heartbeat : restart ? SequenceStatus::Restart : SequenceStatus::First;
    return v;
  }

  if (h.heartbeat) {
    v.status = SequenceStatus::Heartbeat;
    if (seq <= s.highest) return v;
    if (seq - s.highest > config_.window) {  // one heartbeat cannot move the baseline
      ++counters_.anomalies;
      return v;
    }
    add_missing(s, s.highest + 1, seq, &v);  // the tail that never arrived
    s.highest = seq;
    return v;
  }
  if (seq == s.highest + 1) {
    s.highest = seq;
    s.anomaly_run = 0;
    v.status = SequenceStatus::InOrder;
    return v;
  }
  if (seq > s.highest) {
    if (seq - s.highest > config_.window && !confirmed_jump(s, seq)) {
      v.status = SequenceStatus::Anomaly;
      return v;
    }
    add_missing(s, s.highest + 1, seq - 1, &v);
    s.highest = seq;
    v.status = SequenceStatus::Gap;
    return v;
  }
  if (take_missing(s, seq)) {
    v.status = SequenceStatus::Late;
    return v;
  }
  ++counters_.duplicate_messages;
  v.status = SequenceStatus::Duplicate;
  return v;
}

SequenceRange SequenceTracker::would_miss(const wire::Header& h) const {
  const SequenceRange none{1, 0};
  const uint64_t seq = h.sequence;
  if (seq == 0) return none;
  auto it = sessions_.find(Key{h.publisher_id, h.session_epoch});
  const uint64_t highest = it == sessions_.end() ? 0 : it->second.highest;
  if (highest > 0 && !h.heartbeat && seq == 1 && h.session_epoch == 0) return none;  // a restart, or a hole filled
  const uint64_t last = h.heartbeat ? seq : seq - 1;
  if (last <= highest || seq - highest > config_.window) return none;  // nothing new, or an anomaly
  return SequenceRange{highest + 1, last};
}

std::vector<SequenceRange> SequenceTracker::missing(uint64_t publisher_id, uint64_t session_epoch) const {
  std::vector<SequenceRange> out;
  auto it = sessions_.find(Key{publisher_id, session_epoch});
  if (it == sessions_.end()) return out;
  for (const auto& r : it->second.missing) out.push_back(SequenceRange{r.first, r.second});
  return out;
}

uint64_t SequenceTracker::highest(uint64_t publisher_id, uint64_t session_epoch) const {
  auto it = sessions_.find(Key{publisher_id, session_epoch});
  return it == sessions_.end() ? 0 : it->second.highest;
}

}  // namespace hkrt
