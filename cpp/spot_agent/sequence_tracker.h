// Where a message stands in its publisher's sequence: the rules that decide whether a
// message is new, lost, late, repeated or untrustworthy (docs/wire-format.md, "Sequence
// numbers").
//
// A publisher session is (publisher_id, session_epoch): the epoch is the session's start in
// UTC epoch µs, so a restart under the same id is recognised by its new epoch even when the
// new session's first messages were lost.  Each session keeps its own sequence state, so a
// straggler of an older session (or one corrupt epoch) cannot reset the current one; the
// engine's per-symbol rules then judge its spots.  Without epochs (0, older publishers)
// sequence 1 after others is a restart.  Within a session, sequence numbers count messages
// from 1; 0 means "not numbered" (a hand-made message), never deduplicated or gap-checked.
//
// Nothing one message says can silence a publisher: a sequence far ahead of the expected
// window is quarantined (not aggregated, not a new baseline) unless `confirm_run` messages
// in a row continue from it, which a real jump (a publisher fast-forwarded, a long outage)
// does and a corrupt or hostile number does not.  Missing ranges are remembered (bounded),
// so a message that arrives late or is retransmitted fills its hole once and is never
// counted twice.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <unordered_map>
#include <vector>

#include "spot_agent/wire.h"

namespace hkrt {

enum class SequenceStatus : uint8_t {
  Unnumbered,    // sequence 0: processed, never deduplicated
  First,         // the first message of a publisher this agent hears (a late join when sequence > 1)
  InOrder,       // the next one expected
  Gap,           // later than expected, inside the window: the messages between are missing
  Late,          // fills a missing range (reordered, or retransmitted)
  Duplicate,     // seen already: skipped
  Restart,       // a new session of a known publisher (larger epoch, or sequence 1 without epochs)
  Anomaly,       // far outside the window: quarantined
  Heartbeat,     // an idle publisher's "still here" (tail loss shows as a gap range)
};
constexpr int kSequenceStatusCount = 9;
const char* sequence_status_name(SequenceStatus s);

struct SequenceVerdict {
  SequenceStatus status = SequenceStatus::First;
  // Messages this one revealed as missing, inclusive (none when gap_first > gap_last).
  uint64_t gap_first = 1, gap_last = 0;
  uint64_t missing() const { return gap_last >= gap_first ? gap_last - gap_first + 1 : 0; }
  // Whether the message's spots are to be aggregated.
  bool process() const {
    return status != SequenceStatus::Duplicate && status != SequenceStatus::Anomaly &&
           status != SequenceStatus::Heartbeat;
  }
};

struct SequenceConfig {
  uint64_t window = uint64_t{1} << 20;  // a jump of more messages than this is an anomaly
  uint32_t confirm_run = 8;             // consecutive messages that make an anomalous jump real
  size_t max_ranges = 4096;             // missing ranges remembered per publisher (oldest forgotten)
  size_t max_sessions = 1024;           // publisher sessions remembered (least recently heard forgotten)
};

struct SequenceRange {
  uint64_t first, last;  // inclusive
};

struct SequenceCounters {
  uint64_t unnumbered = 0;
  uint64_t gaps = 0;                // gap events (late joins and tail losses included)
  uint64_t missing_messages = 0;    // messages found missing
  uint64_t recovered_messages = 0;  // of those, arrived later (late or retransmitted)
  uint64_t forgotten_messages = 0;  // missing ones dropped from memory (range bound): never recoverable
  uint64_t duplicate_messages = 0;
  uint64_t publisher_restarts = 0;
  uint64_t late_joins = 0;          // the first message heard of a publisher was not its first
  uint64_t anomalies = 0;           // quarantined: sequence far outside the window
  uint64_t old_session_messages = 0;  // from a session older than the publisher's newest
  uint64_t heartbeats = 0;
  uint64_t forgotten_sessions = 0;
  uint64_t publishers = 0;          // publisher ids remembered now
};

class SequenceTracker {
 public:
  explicit SequenceTracker(SequenceConfig config = SequenceConfig()) : config_(config) {}

  // Classifies the message and records it.  A heartbeat says the publisher's last sequence
  // is `sequence`: a tail loss comes back as a Heartbeat verdict with a gap range.
  SequenceVerdict accept(const wire::Header& header);
  // The missing range accept() would report for this message, without recording anything:
  // lets the caller fetch the missing messages first and aggregate everything in order.
  SequenceRange would_miss(const wire::Header& header) const;
  // Outstanding missing ranges of a session, oldest first.
  std::vector<SequenceRange> missing(uint64_t publisher_id, uint64_t session_epoch) const;
  // The highest sequence seen of a session (0 if unknown).
  uint64_t highest(uint64_t publisher_id, uint64_t session_epoch) const;
  const SequenceCounters& counters() const { return counters_; }

 private:
  struct Key {
    uint64_t id, epoch;
    bool operator==(const Key& o) const { return id == o.id && epoch == o.epoch; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return std::hash<uint64_t>()(k.id * 0x9E3779B97F4A7C15ull ^ k.epoch); }
  };
  struct Session {
    uint64_t highest = 0;                  // the highest sequence accepted (0: none yet)
    std::map<uint64_t, uint64_t> missing;  // first -> last, disjoint, below `highest`
    uint64_t anomaly_next = 0;             // the sequence that would continue a quarantined run
    uint32_t anomaly_run = 0;
    std::list<Key>::iterator lru;
  };

  Session& session(const Key& key, bool* created);
  void add_missing(Session& s, uint64_t first, uint64_t last, SequenceVerdict* v);
  bool take_missing(Session& s, uint64_t seq);  // true if seq was missing (now filled)
  // A sequence beyond the window: quarantined, unless it continues a run long enough to be real.
  bool confirmed_jump(Session& s, uint64_t seq);

  SequenceConfig config_;
  std::unordered_map<Key, Session, KeyHash> sessions_;
  std::unordered_map<uint64_t, uint64_t> newest_epoch_;  // publisher id -> newest session epoch
  std::list<Key> lru_;                                   // most recently heard first
  SequenceCounters counters_;
};

}  // namespace hkrt
