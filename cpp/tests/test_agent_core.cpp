#include <atomic>
#include <stdexcept>
#include <vector>

#include "check.h"
#include "spot_agent/agent_core.h"

using namespace hkrt;

namespace {
const DayNumber kFri = days_from_civil(2026, 11, 20);

Spot spot(const char* symbol, int h, int m, int s, double close, double volume) {
  Spot sp;
  sp.symbol = *parse_symbol(symbol);
  sp.datetime = start_of_day(kFri) + h * kMsPerHour + m * kMsPerMinute + s * kMsPerSecond;
  sp.open = sp.high = sp.low = sp.close = close;
  sp.volume = volume;
  sp.amount = volume * close;
  return sp;
}

std::vector<uint8_t> message(uint64_t publisher, uint64_t sequence, const std::vector<Spot>& spots) {
  wire::Header h;
  h.publisher_id = publisher;
  h.sequence = sequence;
  h.cycle_id = sequence;
  std::vector<const Spot*> ptrs;
  for (const Spot& s : spots) ptrs.push_back(&s);
  return wire::encode_spots(h, ptrs.data(), ptrs.size());
}

EngineConfig all_ktypes() { return EngineConfig(); }
}  // namespace

TEST_CASE("sequence numbers through the core: late join, in order, gap, duplicate, restart") {
  AgentCore core(all_ktypes(), 1);
  auto ingest = [&](uint64_t pub, uint64_t seq, int minute) {
    auto m = message(pub, seq, {spot("SH600000", 9, 30 + minute, 0, 10.0, 100.0 * (minute + 1) * (pub == 1 ? 1 : 2))});
    return core.ingest_message(m.data(), m.size(), nullptr);
  };
  const MessageResult first = ingest(1, 5, 0);
  CHECK(first.verdict.status == SequenceStatus::First);
  CHECK_EQ(first.verdict.missing(), 4u);  // joined late: 1..4 never seen
  CHECK(ingest(1, 6, 1).verdict.status == SequenceStatus::InOrder);
  const MessageResult gap = ingest(1, 9, 2);
  CHECK(gap.verdict.status == SequenceStatus::Gap);
  CHECK_EQ(gap.verdict.gap_first, 7u);
  CHECK_EQ(gap.verdict.gap_last, 8u);
  const MessageResult dup = ingest(1, 9, 3);
  CHECK(dup.verdict.status == SequenceStatus::Duplicate);
  CHECK_EQ(dup.accepted, 0u);  // skipped, not aggregated
  CHECK(ingest(1, 1, 4).verdict.status == SequenceStatus::Late);  // sequence 1 was missing: it fills the hole
  CHECK(ingest(1, 1, 4).verdict.status == SequenceStatus::Restart);  // now seen: sequence 1 again restarts
  CHECK(ingest(2, 1, 5).verdict.status == SequenceStatus::First);
  const MessageStats s = core.message_stats();
  CHECK_EQ(s.messages, 7u);
  CHECK_EQ(s.sequence.gaps, 2u);
  CHECK_EQ(s.sequence.missing_messages, 6u);
  CHECK_EQ(s.sequence.recovered_messages, 1u);
  CHECK_EQ(s.sequence.duplicate_messages, 1u);
  CHECK_EQ(s.sequence.publisher_restarts, 1u);
  CHECK_EQ(s.sequence.late_joins, 1u);
  CHECK_EQ(s.sequence.publishers, 2u);
}

TEST_CASE("a live spot dated after its message was sent is rejected, a simulated one is not") {
  AgentCore core(all_ktypes(), 1);
  wire::Header h;
  h.publisher_id = 7;
  h.sequence = 1;
  const Spot ok = spot("SH600000", 10, 0, 0, 10.0, 100.0);
  Spot ahead = spot("SZ000001", 10, 2, 0, 10.0, 100.0);  // two minutes ahead of the send time
  h.send_time_us = wire::to_epoch_ms(ok.datetime) * 1000;
  std::vector<const Spot*> ptrs = {&ok, &ahead};
  auto m = wire::encode_spots(h, ptrs.data(), ptrs.size());
  CHECK_EQ(core.ingest_message(m.data(), m.size(), nullptr).accepted, 1u);
  CHECK_EQ(core.engine().stats().rejected[static_cast<int>(RejectReason::AheadOfClock)], 1u);
  h.sequence = 2;
  h.simulated_time = true;
  m = wire::encode_spots(h, ptrs.data() + 1, 1);
  CHECK_EQ(core.ingest_message(m.data(), m.size(), nullptr).accepted, 1u);
}

TEST_CASE("a header's market time is believed only as far as the accepted spots, and never raises") {
  AgentCore core(all_ktypes(), 1);
  const Spot s = spot("SH600000", 9, 35, 0, 10.0, 100.0);
  std::vector<const Spot*> ptrs = {&s};
  wire::Header h;
  h.publisher_id = 3;
  h.sequence = 1;
  h.market_time_ms = wire::to_epoch_ms(start_of_day(kFri) + 15 * kMsPerHour + kMsPerMinute);  // 15:01 at 09:35
  auto m = wire::encode_spots(h, ptrs.data(), 1);
  const MessageResult r = core.ingest_message(m.data(), m.size(), nullptr);
  CHECK_EQ(r.market_time_ms, wire::to_epoch_ms(s.datetime) + 60'000);  // clamped: 09:36
  CHECK_EQ(core.message_stats().market_time_clamped, 1u);
  for (int64_t bad : {INT64_MAX, INT64_MIN, int64_t{253402300800000}, int64_t{-1}}) {
    h.sequence += 1;
    h.market_time_ms = bad;
    m = wire::encode_spots(h, ptrs.data(), 1);
    CHECK_EQ(core.ingest_message(m.data(), m.size(), nullptr).market_time_ms, 0);
  }
}

TEST_CASE("a message over the size cap is rejected before it is read") {
  AgentConfig cfg;
  cfg.max_message_bytes = 64;
  AgentCore core(all_ktypes(), 1, cfg);
  auto m = message(1, 1, {spot("SH600000", 10, 0, 0, 10.0, 100.0)});
  CHECK(m.size() > 64);
  CHECK(core.ingest_message(m.data(), m.size(), nullptr).error == wire::DecodeError::TooLarge);
  CHECK_EQ(core.message_stats().rejected[static_cast<size_t>(wire::DecodeError::TooLarge)], 1u);
}

TEST_CASE("a bad message is counted by reason and changes nothing") {
  AgentCore core(all_ktypes(), 2);
  auto good = message(1, 1, {spot("SH600000", 10, 0, 0, 10.0, 100.0)});
  const std::vector<uint8_t> junk = {1, 2, 3};
  CHECK(core.ingest_message(junk.data(), junk.size(), nullptr).error == wire::DecodeError::TooShort);
  auto truncated = good;
  truncated.resize(truncated.size() / 2);
  CHECK(core.ingest_message(truncated.data(), truncated.size(), nullptr).error != wire::DecodeError::None);
  auto wrong_id = good;
  wrong_id[4] = 'X';
  CHECK(core.ingest_message(wrong_id.data(), wrong_id.size(), nullptr).error == wire::DecodeError::BadIdentifier);
  CHECK_EQ(core.engine().stats().received, 0u);
  CHECK_EQ(core.ingest_message(good.data(), good.size(), nullptr).accepted, 1u);
  const MessageStats s = core.message_stats();
  CHECK_EQ(s.messages, 4u);
  CHECK_EQ(s.rejected[static_cast<size_t>(wire::DecodeError::TooShort)], 1u);
  CHECK_EQ(s.rejected[static_cast<size_t>(wire::DecodeError::BadIdentifier)], 1u);
}

TEST_CASE("sharded engines build the same bars and completions as one engine") {
  ShardedEngine one(all_ktypes(), 1), four(all_ktypes(), 4);
  const char* symbols[] = {"SH600000", "SZ000001", "SH600519", "SZ300750", "BJ920118", "SH688981", "SZ000002"};
  std::vector<Spot> spots;
  for (int t = 0; t < 200; ++t)
    for (int i = 0; i < 7; ++i) spots.push_back(spot(symbols[i], 9, 30 + t / 20, (t % 20) * 3, 10.0 + i + t * 0.01, 100.0 * (t + 1)));
  std::vector<uint32_t> keys;
  std::vector<int64_t> times;
  std::vector<double> prices, volumes, amounts;
  for (const Spot& s : spots) {
    keys.push_back(s.symbol.key());
    times.push_back(s.datetime);
    prices.push_back(s.close);
    volumes.push_back(s.volume);
    amounts.push_back(s.amount);
  }
  keys[3] = kInvalidSymbolKey;  // one unparseable row, counted once whatever the sharding
  SpotColumns c;
  c.n = spots.size();
  c.symbol_keys = keys.data();
  c.datetime = times.data();
  c.close = prices.data();
  c.volume = volumes.data();
  c.amount = amounts.data();
  CompletedBars done_one, done_four;
  CHECK_EQ(one.ingest_columns(c, &done_one), four.ingest_columns(c, &done_four));
  one.advance_to(start_of_day(kFri) + 15 * kMsPerHour + kMsPerMinute, &done_one);
  four.advance_to(start_of_day(kFri) + 15 * kMsPerHour + kMsPerMinute, &done_four);
  CHECK_EQ(done_one.size(), done_four.size());
  CHECK_EQ(one.stats().rejected[static_cast<int>(RejectReason::InvalidSymbol)], 1u);
  CHECK_EQ(four.stats().rejected[static_cast<int>(RejectReason::InvalidSymbol)], 1u);
  CHECK_EQ(four.stats().symbols, 7u);
  for (const char* name : symbols) {
    const Symbol s = *parse_symbol(name);
    for (KType k : kAllKTypes) {
      const auto a = one.shard_of(s).bars(s, k), b = four.shard_of(s).bars(s, k);
      CHECK_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
        CHECK_EQ(a[i].datetime, b[i].datetime);
        CHECK_EQ(a[i].close, b[i].close);
        CHECK_EQ(a[i].volume, b[i].volume);
      }
    }
  }
}

TEST_CASE("ParallelFor runs every index once and rethrows a task's exception") {
  ParallelFor pool(3);
  for (int round = 0; round < 100; ++round) {
    std::atomic<int> mask{0};
    pool.run([&](int i) { mask |= 1 << i; });
    CHECK_EQ(mask.load(), 7);
  }
  bool thrown = false;
  try {
    pool.run([](int i) {
      if (i == 2) throw std::runtime_error("shard failed");
    });
  } catch (const std::runtime_error&) {
    thrown = true;
  }
  CHECK(thrown);
  std::atomic<int> after{0};
  pool.run([&](int) { ++after; });
  CHECK_EQ(after.load(), 3);
}

TEST_MAIN()
