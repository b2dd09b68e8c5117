// The agent's message path: verify and decode a wire message, check its place in its
// publisher's sequence, aggregate its spots, and report the bars that completed.
//
// Every message is verified (size cap, identifier, FlatBuffers verifier on its exact
// length, schema version) before anything reads it; a bad one is counted by reason and
// changes nothing.  Its place in the publisher's sequence is judged by SequenceTracker
// (sequence_tracker.h): duplicates and quarantined messages are skipped, everything else
// aggregated, gaps reported with their exact range so the caller can ask for them again.
// Spots of a live feed dated later than the message was sent (beyond a margin) are
// rejected, and the header's market time is only believed as far as the spots the engine
// accepted: one header can never close a day.  Messages are processed one at a time, in
// arrival order.
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <vector>

#include "spot_agent/cycle_tracker.h"
#include "spot_agent/sequence_tracker.h"
#include "spot_agent/sharded_engine.h"
#include "spot_agent/wire.h"

namespace hkrt {

struct AgentConfig {
  size_t max_message_bytes = size_t{64} << 20;  // larger messages are rejected (too_large)
  // Live feeds: a spot may be dated at most this far after its message's send time.
  int64_t max_ahead_ms = 60'000;
  // A header's market time may run at most this far past the newest accepted spot.
  int64_t market_time_slack_ms = 60'000;
  SequenceConfig sequence;
  CycleConfig cycles;
  size_t symbol_cache_rows = size_t{1} << 20;  // wire symbols remembered (wire::SymbolCache)
};

struct MessageResult {
  wire::DecodeError error = wire::DecodeError::None;
  wire::Header header;
  SequenceVerdict verdict;
  size_t spots = 0;
  size_t accepted = 0;
  // The header's market time as far as it can be believed (UTC epoch ms, 0 = none): never
  // beyond the newest accepted spot plus the slack, 0 when out of any sane range.
  int64_t market_time_ms = 0;
  bool held = false;  // hold_gaps: not processed, the verdict's range is missing
  // The message's spots as decoded once for the engine, shared with every other consumer
  // (null unless it was processed).  The core never writes to columns someone still holds:
  // it decodes the next message into a fresh buffer then, so holders may keep them.
  std::shared_ptr<const wire::DecodedColumns> columns;
  std::vector<CycleSummary> cycles_over;  // publisher cycles this message ended, oldest first
};

struct MessageStats {
  uint64_t messages = 0;  // received, good or bad
  std::array<uint64_t, wire::kDecodeErrorCount> rejected{};  // by reason; [0] unused
  SequenceCounters sequence;
  uint64_t market_time_clamped = 0;  // headers whose market time ran ahead of the accepted spots
  uint64_t market_time_invalid = 0;  // headers whose market time was out of any sane range
  uint64_t held = 0;                 // messages held back until the ones before them were fetched
  CycleCounters cycles;
  uint64_t symbol_cache_hits = 0;    // spots whose symbol was resolved from the session's cache
  uint64_t symbol_cache_misses = 0;  // spots whose symbol was parsed (new, moved or changed rows)
};

class AgentCore {
 public:
  AgentCore(const EngineConfig& config, int shards, AgentConfig agent = AgentConfig());

  // With `hold_gaps`, a message that would reveal missing messages is not processed: the
  // result has `held` set and the verdict's gap range, so the caller can fetch the missing
  // ones, ingest them, then ingest this one again.  With `details`, the shared columns carry
  // every spot field (name, yesterday's close, the book), for consumers that build Spots.
  MessageResult ingest_message(const uint8_t* data, size_t size, CompletedBars* completed, bool hold_gaps = false,
                               bool details = false);
  ShardedEngine& engine() { return engine_; }
  const ShardedEngine& engine() const { return engine_; }
  MessageStats message_stats() const;
  std::vector<SequenceRange> missing(uint64_t publisher_id, uint64_t session_epoch) const;
  const AgentConfig& config() const { return config_; }

 private:
  int64_t believed_market_time(int64_t header_ms);

  AgentConfig config_;
  ShardedEngine engine_;
  // Reused across messages while nobody else holds it (see MessageResult::columns).
  std::shared_ptr<wire::DecodedColumns> columns_;
  wire::SymbolCache symbols_;
  SequenceTracker tracker_;
  CycleTracker cycles_;
  MessageStats stats_;
  mutable std::mutex mutex_;
};

}  // namespace hkrt
