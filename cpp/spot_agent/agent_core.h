// The agent's message path: verify and decode a wire message, check its place in its
// publisher's sequence, aggregate its spots, and report the bars that completed.
//
// Every message is verified (identifier, FlatBuffers verifier on its exact length,
// schema version) before anything reads it; a bad one is counted by reason and changes
// nothing.  Per publisher, a sequence number that skips ahead is a gap (the count of
// lost messages is reported), one already seen is a duplicate (skipped), and sequence 1
// after others is a publisher restart.  Messages are processed one at a time, in
// arrival order.
#pragma once

#include <array>
#include <mutex>
#include <unordered_map>

#include "spot_agent/sharded_engine.h"
#include "spot_agent/wire.h"

namespace hkrt {

enum class SequenceStatus : uint8_t { First, InOrder, Gap, Duplicate, Restart };
const char* sequence_status_name(SequenceStatus s);

struct MessageResult {
  wire::DecodeError error = wire::DecodeError::None;
  wire::Header header;
  SequenceStatus sequence = SequenceStatus::First;
  uint64_t missing = 0;  // messages lost just before this one (Gap)
  size_t spots = 0;
  size_t accepted = 0;
};

struct MessageStats {
  uint64_t messages = 0;  // received, good or bad
  std::array<uint64_t, wire::kDecodeErrorCount> rejected{};  // by reason; [0] unused
  uint64_t duplicate_messages = 0;
  uint64_t gaps = 0;              // gap events
  uint64_t missing_messages = 0;  // messages lost in all gaps
  uint64_t publisher_restarts = 0;
  uint64_t publishers = 0;
};

class AgentCore {
 public:
  AgentCore(const EngineConfig& config, int shards);

  MessageResult ingest_message(const uint8_t* data, size_t size, CompletedBars* completed);
  ShardedEngine& engine() { return engine_; }
  const ShardedEngine& engine() const { return engine_; }
  MessageStats message_stats() const;

 private:
  ShardedEngine engine_;
  wire::DecodedColumns columns_;  // reused across messages
  std::unordered_map<uint64_t, uint64_t> last_sequence_;
  MessageStats stats_;
  mutable std::mutex mutex_;
};

}  // namespace hkrt
