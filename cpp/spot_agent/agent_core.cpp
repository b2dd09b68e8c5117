#include "agent_core.h"

#include <algorithm>

#include "kdata/time.h"

namespace hkrt {

// Market times outside kSaneMarketTimeMs{First,Last} (kdata/time.h, 1990..2200) are corruption, not
// a market (and could overflow the local-time conversion downstream).

AgentCore::AgentCore(const EngineConfig& config, int shards, AgentConfig agent)
    : config_(agent),
      engine_(config, shards),
      symbols_(agent.symbol_cache_rows),
      tracker_(agent.sequence),
      cycles_(agent.cycles) {}

int64_t AgentCore::believed_market_time(int64_t header_ms) {
  if (header_ms == 0) return 0;
  if (header_ms < kSaneMarketTimeMsFirst || header_ms > kSaneMarketTimeMsLast) {
    ++stats_.market_time_invalid;
    return 0;
  }
  const TimestampMs newest = engine_.newest_accepted();
  if (newest == INT64_MIN) return 0;  // no accepted spot yet: nothing vouches for it
  const int64_t limit = wire::to_epoch_ms(newest) + config_.market_time_slack_ms;
  if (header_ms > limit) {
    ++stats_.market_time_clamped;
    return limit;
  }
  return header_ms;
}

MessageResult AgentCore::ingest_message(const uint8_t* data, size_t size, CompletedBars* completed, bool hold_gaps,
                                        bool details) {
  std::lock_guard<std::mutex> lock(mutex_);
  MessageResult result;
  ++stats_.messages;
  if (size > config_.max_message_bytes) {
    result.error = wire::DecodeError::TooLarge;
    ++stats_.rejected[static_cast<size_t>(result.error)];
    return result;
  }
  // The last message's columns are still held by a consumer: never write under it.
  if (!columns_ || columns_.use_count() > 1) columns_ = std::make_shared<wire::DecodedColumns>();
  result.error = wire::decode_columns(data, size, &result.header, columns_.get(), details, &symbols_);
  stats_.symbol_cache_hits = symbols_.hits;
  stats_.symbol_cache_misses = symbols_.misses;
  if (result.error != wire::DecodeError::None) {
    ++stats_.rejected[static_cast<size_t>(result.error)];
    return result;
  }
  const wire::Header& h = result.header;
  if (hold_gaps) {
    const SequenceRange gap = tracker_.would_miss(h);
    if (gap.last >= gap.first) {
      result.held = true;
      result.verdict.status = h.heartbeat ? SequenceStatus::Heartbeat : SequenceStatus::Gap;
      result.verdict.gap_first = gap.first;
      result.verdict.gap_last = gap.last;
      ++stats_.held;
      // counted as received once, when it is ingested again
      --stats_.messages;
      return result;
    }
  }
  result.verdict = tracker_.accept(h);
  if (result.verdict.process()) {
    result.spots = columns_->size();
    SpotColumns view = columns_->view();
    // A live feed's spots cannot be from the future of their own message.
    if (!h.simulated_time && h.send_time_us > 0 && h.send_time_us / 1000 < kSaneMarketTimeMsLast)
      view.not_after = wire::to_local_ms(h.send_time_us / 1000 + config_.max_ahead_ms);
    view.changes_only = h.changes_only;
    result.accepted = engine_.ingest_columns(view, completed);
  }
  if (result.verdict.process() || result.verdict.status == SequenceStatus::Heartbeat)
    result.market_time_ms = believed_market_time(h.market_time_ms);
  if (result.verdict.process()) {
    result.columns = columns_;
    cycles_.add(h, result.market_time_ms, result.spots, result.accepted, &result.cycles_over);
    stats_.cycles = cycles_.counters();
  }
  stats_.sequence = tracker_.counters();
  return result;
}

MessageStats AgentCore::message_stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

std::vector<SequenceRange> AgentCore::missing(uint64_t publisher_id, uint64_t session_epoch) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return tracker_.missing(publisher_id, session_epoch);
}

}  // namespace hkrt
