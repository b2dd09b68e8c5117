// Symbols sharded over several K-line engines, each processed by its own thread.
//
// A symbol always lives in the same shard, and a call hands each shard its rows in their
// original order, so one symbol's spots are never reordered; different shards run in
// parallel.  With one shard (the default on small machines) calls go straight through.
#pragma once

#include <memory>
#include <vector>

#include "kdata/engine.h"
#include "spot_agent/parallel.h"

namespace hkrt {

class ShardedEngine {
 public:
  ShardedEngine(const EngineConfig& config, int shards);

  size_t ingest_columns(const SpotColumns& columns, CompletedBars* completed);
  size_t ingest(const Spot* const* spots, size_t n, CompletedBars* completed);
  IngestResult ingest_one(const Spot& spot, CompletedBars* completed);
  void advance_to(TimestampMs now, CompletedBars* completed);
  // Pre-size each shard for a day of its symbols (KDataEngine::reserve), or of every symbol
  // it holds (reserve_next_day).
  void reserve(const uint32_t* symbol_keys, size_t n);
  void reserve_next_day();

  int shard_count() const { return static_cast<int>(shards_.size()); }
  KDataEngine& shard_of(Symbol s) { return *shards_[shard_index(s.key())]; }
  const KDataEngine& shard_of(Symbol s) const { return *shards_[shard_index(s.key())]; }

  std::vector<Symbol> symbols() const;
  EngineStats stats() const;  // summed over shards
  TimestampMs newest_accepted() const;  // the latest over shards
  size_t memory_bytes() const;
  std::vector<KType> enabled_ktypes() const { return shards_.front()->enabled_ktypes(); }

 private:
  size_t shard_index(uint32_t key) const {
    return shards_.size() == 1 ? 0 : (key * 2654435761u) % shards_.size();  // Fibonacci hash spreads codes
  }

  std::vector<std::unique_ptr<KDataEngine>> shards_;
  ParallelFor pool_;
  // Per-call scratch, reused to avoid allocation on the hot path.
  std::vector<std::vector<size_t>> rows_;
  std::vector<CompletedBars> completed_;
};

}  // namespace hkrt
