#include "agent_core.h"

namespace hkrt {

const char* sequence_status_name(SequenceStatus s) {
  switch (s) {
    case SequenceStatus::First:
      return "first";
    case SequenceStatus::InOrder:
      return "in_order";
    case SequenceStatus::Gap:
      return "gap";
    case SequenceStatus::Duplicate:
      return "duplicate";
    default:
      return "restart";
  }
}

AgentCore::AgentCore(const EngineConfig& config, int shards) : engine_(config, shards) {}

MessageResult AgentCore::ingest_message(const uint8_t* data, size_t size, CompletedBars* completed) {
  std::lock_guard<std::mutex> lock(mutex_);
  MessageResult result;
  ++stats_.messages;
  result.error = wire::decode_columns(data, size, &result.header, &columns_);
  if (result.error != wire::DecodeError::None) {
    ++stats_.rejected[static_cast<size_t>(result.error)];
    return result;
  }
  const uint64_t seq = result.header.sequence;
  auto it = last_sequence_.find(result.header.publisher_id);
  if (it == last_sequence_.end()) {
    last_sequence_.emplace(result.header.publisher_id, seq);
    stats_.publishers = last_sequence_.size();
    result.sequence = SequenceStatus::First;
  } else if (seq == it->second + 1) {
    result.sequence = SequenceStatus::InOrder;
    it->second = seq;
  } else if (seq > it->second + 1) {
    result.sequence = SequenceStatus::Gap;
    result.missing = seq - it->second - 1;
    ++stats_.gaps;
    stats_.missing_messages += result.missing;
    it->second = seq;
  } else if (seq == 1) {  // the publisher started again under the same id
    result.sequence = SequenceStatus::Restart;
    ++stats_.publisher_restarts;
    it->second = seq;
  } else {
    result.sequence = SequenceStatus::Duplicate;
    ++stats_.duplicate_messages;
    return result;  // already aggregated: skip
  }
  result.spots = columns_.size();
  result.accepted = engine_.ingest_columns(columns_.view(), completed);
  return result;
}

MessageStats AgentCore::message_stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace hkrt
