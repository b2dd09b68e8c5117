#include "sharded_engine.h"

#include <algorithm>

namespace hkrt {

namespace {
// The rows of `c` listed in `rows`, gathered into owned arrays (one shard's part of a push).
struct GatheredColumns {
  std::vector<uint32_t> keys;
  std::vector<int64_t> datetime;
  std::vector<double> open, high, low, close, volume, amount;

  SpotColumns gather(const SpotColumns& c, const std::vector<size_t>& rows) {
    auto take = [&rows](const auto* src, auto& dst) {
      dst.resize(rows.size());
      for (size_t i = 0; i < rows.size(); ++i) dst[i] = src[rows[i]];
    };
    take(c.symbol_keys, keys);
    take(c.datetime, datetime);
    take(c.close, close);
    take(c.volume, volume);
    take(c.amount, amount);
    SpotColumns out;
    out.n = rows.size();
    out.symbol_keys = keys.data();
    out.datetime = datetime.data();
    out.close = close.data();
    out.volume = volume.data();
    out.amount = amount.data();
    out.not_after = c.not_after;
    out.changes_only = c.changes_only;
    if (c.open) take(c.open, open), out.open = open.data();
    if (c.high) take(c.high, high), out.high = high.data();
    if (c.low) take(c.low, low), out.low = low.data();
    return out;
  }
};
}  // namespace

ShardedEngine::ShardedEngine(const EngineConfig& config, int shards)
    : pool_(std::max(1, shards)), rows_(static_cast<size_t>(std::max(1, shards))),
      completed_(static_cast<size_t>(std::max(1, shards))) {
  for (int i = 0; i < std::max(1, shards); ++i) shards_.push_back(std::make_unique<KDataEngine>(config));
}

size_t ShardedEngine::ingest_columns(const SpotColumns& c, CompletedBars* completed) {
  if (shards_.size() == 1) return shards_[0]->ingest_columns(c, completed);
  for (auto& r : rows_) r.clear();
  for (size_t i = 0; i < c.n; ++i) {
    // An unparseable symbol goes to shard 0, which rejects and counts it.
    const uint32_t key = c.symbol_keys[i];
    rows_[key == kInvalidSymbolKey ? 0 : shard_index(key)].push_back(i);
  }
  std::vector<size_t> accepted(shards_.size(), 0);
  pool_.run([&](int s) {
    thread_local GatheredColumns gathered;
    const size_t idx = static_cast<size_t>(s);
    completed_[idx].clear();
    if (rows_[idx].empty()) return;
    accepted[idx] = shards_[idx]->ingest_columns(gathered.gather(c, rows_[idx]), completed ? &completed_[idx] : nullptr);
  });
  size_t total = 0;
  for (size_t s = 0; s < shards_.size(); ++s) {
    total += accepted[s];
    if (completed) completed->insert(completed->end(), completed_[s].begin(), completed_[s].end());
  }
  return total;
}

size_t ShardedEngine::ingest(const Spot* const* spots, size_t n, CompletedBars* completed) {
  if (shards_.size() == 1) return shards_[0]->ingest(spots, n, completed);
  std::vector<std::vector<const Spot*>> parts(shards_.size());
  for (size_t i = 0; i < n; ++i) parts[shard_index(spots[i]->symbol.key())].push_back(spots[i]);
  std::vector<size_t> accepted(shards_.size(), 0);
  pool_.run([&](int s) {
    const size_t idx = static_cast<size_t>(s);
    completed_[idx].clear();
    accepted[idx] =
        shards_[idx]->ingest(parts[idx].data(), parts[idx].size(), completed ? &completed_[idx] : nullptr);
  });
  size_t total = 0;
  for (size_t s = 0; s < shards_.size(); ++s) {
    total += accepted[s];
    if (completed) completed->insert(completed->end(), completed_[s].begin(), completed_[s].end());
  }
  return total;
}

IngestResult ShardedEngine::ingest_one(const Spot& spot, CompletedBars* completed) {
  return shard_of(spot.symbol).ingest(spot, completed);
}

void ShardedEngine::advance_to(TimestampMs now, CompletedBars* completed) {
  pool_.run([&](int s) {
    const size_t idx = static_cast<size_t>(s);
    completed_[idx].clear();
    shards_[idx]->advance_to(now, completed ? &completed_[idx] : nullptr);
  });
  if (completed)
    for (auto& part : completed_) completed->insert(completed->end(), part.begin(), part.end());
}

void ShardedEngine::reserve(const uint32_t* keys, size_t n) {
  if (shards_.size() == 1) return shards_[0]->reserve(keys, n);
  std::vector<std::vector<uint32_t>> parts(shards_.size());
  for (size_t i = 0; i < n; ++i)
    if (keys[i] != kInvalidSymbolKey) parts[shard_index(keys[i])].push_back(keys[i]);
  pool_.run([&](int s) {
    const size_t idx = static_cast<size_t>(s);
    shards_[idx]->reserve(parts[idx].data(), parts[idx].size());
  });
}

void ShardedEngine::reserve_next_day() {
  pool_.run([&](int s) { shards_[static_cast<size_t>(s)]->reserve_next_day(); });
}

std::vector<Symbol> ShardedEngine::symbols() const {
  std::vector<Symbol> out;
  for (const auto& shard : shards_) {
    auto part = shard->symbols();
    out.insert(out.end(), part.begin(), part.end());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TimestampMs ShardedEngine::newest_accepted() const {
  TimestampMs newest = INT64_MIN;
  for (const auto& shard : shards_) newest = std::max(newest, shard->newest_accepted());
  return newest;
}

EngineStats ShardedEngine::stats() const {
  EngineStats total;
  for (const auto& shard : shards_) {
    const EngineStats s = shard->stats();
    total.received += s.received;
    total.accepted += s.accepted;
    total.duplicates += s.duplicates;
    for (int r = 0; r < kRejectReasonCount; ++r) total.rejected[r] += s.rejected[r];
    total.carry_in += s.carry_in;
    total.filled_bars += s.filled_bars;
    total.amended_bars += s.amended_bars;
    total.gap_spans += s.gap_spans;
    total.gap_spans_repaired += s.gap_spans_repaired;
    total.gap_repair_mismatches += s.gap_repair_mismatches;
    total.gap_volume_days += s.gap_volume_days;
    total.after_hours_days += s.after_hours_days;
    total.period_history_merged += s.period_history_merged;
    total.period_history_replaced += s.period_history_replaced;
    total.symbols += s.symbols;
  }
  return total;
}

size_t ShardedEngine::memory_bytes() const {
  size_t bytes = 0;
  for (const auto& shard : shards_) bytes += shard->memory_bytes();
  return bytes;
}

}  // namespace hkrt
