#include <tuple>
#include <vector>

#include "check.h"
#include "spot_agent/agent_core.h"
#include "spot_agent/cycle_tracker.h"

using namespace hkrt;

namespace {
wire::Header part(uint64_t publisher, uint64_t cycle, uint32_t index, uint32_t count, int64_t send_us = 1000) {
  wire::Header h;
  std::tie(h.publisher_id, h.cycle_id, h.part_index, h.part_count, h.send_time_us) =
      std::make_tuple(publisher, cycle, index, count, send_us);
  return h;
}
}  // namespace

TEST_CASE("a cycle is over when its last part arrives, with the sums of its parts") {
  CycleTracker t;
  std::vector<CycleSummary> over;
  t.add(part(1, 10, 0, 3, 5000), 100, 4, 3, &over);
  t.add(part(1, 10, 2, 3, 6000), 300, 5, 5, &over);
  CHECK(over.empty());
  CHECK_EQ(t.open(), size_t(1));
  t.add(part(1, 10, 1, 3, 7000), 200, 6, 1, &over);
  CHECK_EQ(over.size(), size_t(1));
  const CycleSummary& c = over[0];
  CHECK_EQ(c.cycle_id, 10u);
  CHECK_EQ(c.parts_received, 3u);
  CHECK(c.complete());
  CHECK_EQ(c.spots, 15u);
  CHECK_EQ(c.accepted, 9u);
  CHECK_EQ(c.first_send_us, 5000);  // the first part that arrived
  CHECK_EQ(c.market_time_ms, 300);  // the largest of its parts
  CHECK(!c.joined_mid_cycle);
  CHECK_EQ(t.open(), size_t(0));
  CHECK_EQ(t.counters().cycles, 1u);
  CHECK_EQ(t.counters().incomplete_cycles, 0u);
}

TEST_CASE("a newer cycle of the same publisher ends the old one, incomplete; other publishers' stay open") {
  CycleTracker t;
  std::vector<CycleSummary> over;
  t.add(part(1, 1, 0, 2), 0, 1, 1, &over);
  t.add(part(2, 7, 0, 2), 0, 1, 1, &over);
  t.add(part(1, 1, 0, 2), 0, 1, 0, &over);  // a repeated part counts once
  t.add(part(1, 2, 0, 1), 0, 1, 1, &over);
  CHECK_EQ(over.size(), size_t(2));
  CHECK(over[0].cycle_id == 1 && over[0].parts_received == 1 && !over[0].complete() && over[0].spots == 2);
  CHECK(over[1].cycle_id == 2 && over[1].complete());
  CHECK_EQ(t.open(), size_t(1));  // publisher 2's cycle 7
  CHECK_EQ(t.counters().incomplete_cycles, 1u);
}

TEST_CASE("joining a publisher mid-cycle is flagged; a part count of 0 is one part") {
  CycleTracker t;
  std::vector<CycleSummary> over;
  t.add(part(5, 3, 1, 2), 0, 1, 1, &over);
  t.add(part(5, 4, 0, 0), 0, 1, 1, &over);
  CHECK_EQ(over.size(), size_t(2));
  CHECK(over[0].joined_mid_cycle);
  CHECK(!over[1].joined_mid_cycle);
  CHECK(over[1].complete());
}

TEST_CASE("bounds: the oldest open cycle is abandoned; a cycle with max_parts parts is over") {
  CycleConfig config;
  config.max_open = 2;
  config.max_parts = 3;
  CycleTracker t(config);
  std::vector<CycleSummary> over;
  t.add(part(1, 1, 0, 9), 0, 1, 1, &over);
  t.add(part(2, 1, 0, 9), 0, 1, 1, &over);
  t.add(part(3, 1, 0, 9), 0, 1, 1, &over);  // publisher 1's cycle dropped: not reported to publisher 3
  CHECK(over.empty());
  CHECK_EQ(t.open(), size_t(2));
  CHECK_EQ(t.counters().abandoned_cycles, 1u);
  t.add(part(2, 1, 1, 9), 0, 1, 1, &over);
  t.add(part(2, 1, 2, 9), 0, 1, 1, &over);
  CHECK_EQ(over.size(), size_t(1));  // three parts remembered: over, though 9 were announced
  CHECK_EQ(over[0].publisher_id, 2u);
  CHECK(!over[0].complete());
  // the oldest open cycle is the same publisher's: it is reported when abandoned
  t.add(part(4, 1, 0, 9), 0, 1, 1, &over);
  t.add(part(4, 2, 0, 9), 0, 1, 1, &over);  // ends 4/1 as a newer cycle
  CHECK_EQ(over.size(), size_t(2));
  CHECK_EQ(over[1].publisher_id, 4u);
}

TEST_CASE("the agent core reports cycles over and shares its decoded columns") {
  AgentCore core(EngineConfig(), 1);
  auto message = [](uint64_t seq, uint64_t cycle, uint32_t index, uint32_t count) {
    Spot s;
    s.symbol = *parse_symbol("SH600000");
    s.datetime = start_of_day(days_from_civil(2026, 11, 20)) + 10 * kMsPerHour + static_cast<int64_t>(seq) * 3000;
    s.open = s.high = s.low = s.close = 10.0;
    s.volume = 100.0 * static_cast<double>(seq);
    s.amount = s.volume * 10;
    s.name = "浦发银行";
    wire::Header h = part(1, cycle, index, count);
    h.sequence = seq;
    h.simulated_time = true;
    const Spot* p = &s;
    return wire::encode_spots(h, &p, 1);
  };
  auto m1 = message(1, 1, 0, 2);
  MessageResult r1 = core.ingest_message(m1.data(), m1.size(), nullptr);
  CHECK(r1.cycles_over.empty());
  CHECK(r1.columns != nullptr);
  const wire::DecodedColumns* held = r1.columns.get();
  auto m2 = message(2, 1, 1, 2);
  MessageResult r2 = core.ingest_message(m2.data(), m2.size(), nullptr, false, true);
  CHECK_EQ(r2.cycles_over.size(), size_t(1));
  CHECK(r2.cycles_over[0].complete());
  CHECK(r2.columns.get() != held);  // r1 still holds its columns: they were not overwritten
  CHECK_EQ(r1.columns->volume[0], 100.0);
  CHECK_EQ(r2.columns->volume[0], 200.0);
  CHECK(r2.columns->has_details);
  CHECK(r2.columns->name(0) == "浦发银行");
  r1 = MessageResult();
  r2 = MessageResult();
  auto m3 = message(3, 2, 0, 1);
  const MessageResult r3 = core.ingest_message(m3.data(), m3.size(), nullptr);
  CHECK_EQ(r3.cycles_over.size(), size_t(1));
  CHECK_EQ(core.message_stats().cycles.cycles, 2u);
  auto dup = message(3, 2, 0, 1);
  const MessageResult r4 = core.ingest_message(dup.data(), dup.size(), nullptr);
  CHECK(r4.columns == nullptr);  // a duplicate is not processed: nothing to share, no cycle
  CHECK(r4.cycles_over.empty());
}

TEST_MAIN()
