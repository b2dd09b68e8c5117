// SequenceTracker: every sequence case of docs/wire-format.md, "Sequence numbers".
#include "check.h"
#include "spot_agent/sequence_tracker.h"

using namespace hkrt;

namespace {
wire::Header header(uint64_t seq, uint64_t epoch = 100, uint64_t publisher = 1, bool heartbeat = false) {
  wire::Header h;
  h.publisher_id = publisher;
  h.session_epoch = epoch;
  h.sequence = seq;
  h.heartbeat = heartbeat;
  return h;
}
}  // namespace

TEST_CASE("sequence 0 is unnumbered: never a duplicate, never a gap") {
  SequenceTracker t;
  for (int i = 0; i < 3; ++i) {
    const SequenceVerdict v = t.accept(header(0));
    CHECK(v.status == SequenceStatus::Unnumbered);
    CHECK(v.process());
  }
  CHECK_EQ(t.counters().unnumbered, 3u);
  CHECK_EQ(t.counters().duplicate_messages, 0u);
}

TEST_CASE("a new publisher that starts past 1 reports what it missed") {
  SequenceTracker t;
  const SequenceVerdict v = t.accept(header(36));
  CHECK(v.status == SequenceStatus::First);
  CHECK_EQ(v.gap_first, 1u);
  CHECK_EQ(v.gap_last, 35u);
  CHECK_EQ(t.counters().late_joins, 1u);
  CHECK_EQ(t.missing(1, 100).size(), 1u);
  // the missed ones, retransmitted, fill the hole once each
  for (uint64_t s = 1; s <= 35; ++s) CHECK(t.accept(header(s)).status == SequenceStatus::Late);
  CHECK(t.accept(header(20)).status == SequenceStatus::Duplicate);
  CHECK_EQ(t.counters().recovered_messages, 35u);
  CHECK(t.missing(1, 100).empty());
}

TEST_CASE("gaps, out-of-order fills and duplicates are each counted once") {
  SequenceTracker t;
  CHECK(t.accept(header(1)).status == SequenceStatus::First);
  CHECK(t.accept(header(2)).status == SequenceStatus::InOrder);
  const SequenceVerdict gap = t.accept(header(6));
  CHECK(gap.status == SequenceStatus::Gap);
  CHECK_EQ(gap.missing(), 3u);
  CHECK(t.accept(header(4)).status == SequenceStatus::Late);
  CHECK(t.accept(header(4)).status == SequenceStatus::Duplicate);
  const auto holes = t.missing(1, 100);
  CHECK_EQ(holes.size(), 2u);
  CHECK_EQ(holes[0].first, 3u);
  CHECK_EQ(holes[1].first, 5u);
  CHECK_EQ(t.counters().missing_messages, 3u);
  CHECK_EQ(t.counters().recovered_messages, 1u);
  CHECK_EQ(t.counters().duplicate_messages, 1u);
}

TEST_CASE("a restart is recognised by its epoch even when its first messages were lost") {
  SequenceTracker t;
  for (uint64_t s = 1; s <= 50; ++s) t.accept(header(s, 100));
  const SequenceVerdict v = t.accept(header(3, 200));  // new session, 1 and 2 lost
  CHECK(v.status == SequenceStatus::Restart);
  CHECK(v.process());
  CHECK_EQ(v.gap_first, 1u);
  CHECK_EQ(v.gap_last, 2u);
  CHECK(t.accept(header(4, 200)).status == SequenceStatus::InOrder);
  // a straggler of the old session cannot reset the new one
  CHECK(t.accept(header(51, 100)).status == SequenceStatus::InOrder);
  CHECK(t.accept(header(5, 200)).status == SequenceStatus::InOrder);
  CHECK_EQ(t.counters().old_session_messages, 1u);
  CHECK_EQ(t.counters().publisher_restarts, 1u);
}

TEST_CASE("without epochs, sequence 1 after others is a restart") {
  SequenceTracker t;
  for (uint64_t s = 1; s <= 5; ++s) t.accept(header(s, 0));
  CHECK(t.accept(header(1, 0)).status == SequenceStatus::Restart);
  CHECK(t.accept(header(2, 0)).status == SequenceStatus::InOrder);
}

TEST_CASE("one sequence far outside the window is quarantined, never a new baseline") {
  SequenceConfig cfg;
  cfg.window = 1000;
  cfg.confirm_run = 4;
  SequenceTracker t(cfg);
  t.accept(header(1));
  CHECK(t.accept(header(uint64_t{1} << 63)).status == SequenceStatus::Anomaly);
  CHECK(!t.accept(header((uint64_t{1} << 63) + 7)).process());
  CHECK(t.accept(header(2)).status == SequenceStatus::InOrder);  // the publisher goes on
  CHECK(t.accept(header(3)).status == SequenceStatus::InOrder);
  CHECK_EQ(t.counters().anomalies, 2u);
  // a real jump continues in order and is believed after confirm_run messages
  CHECK(t.accept(header(50'001)).status == SequenceStatus::Anomaly);
  CHECK(t.accept(header(50'002)).status == SequenceStatus::Anomaly);
  CHECK(t.accept(header(50'003)).status == SequenceStatus::Anomaly);
  const SequenceVerdict jump = t.accept(header(50'004));
  CHECK(jump.status == SequenceStatus::Gap);
  CHECK_EQ(jump.gap_first, 4u);
  CHECK(t.accept(header(50'005)).status == SequenceStatus::InOrder);
}

TEST_CASE("a heartbeat reveals a lost tail; one cannot move the baseline far") {
  SequenceTracker t;
  t.accept(header(1));
  t.accept(header(2));
  const SequenceVerdict hb = t.accept(header(5, 100, 1, true));
  CHECK(hb.status == SequenceStatus::Heartbeat);
  CHECK(!hb.process());
  CHECK_EQ(hb.gap_first, 3u);
  CHECK_EQ(hb.gap_last, 5u);
  CHECK(t.accept(header(5, 100, 1, true)).missing() == 0);  // nothing new
  CHECK(t.accept(header(5)).status == SequenceStatus::Late);
  CHECK(t.accept(header(6)).status == SequenceStatus::InOrder);
  CHECK(t.accept(header(uint64_t{1} << 62, 100, 1, true)).missing() == 0);
  CHECK(t.accept(header(7)).status == SequenceStatus::InOrder);
  // a heartbeat from a publisher never heard: everything through it is missing
  const SequenceVerdict late = t.accept(header(9, 5, 2, true));
  CHECK_EQ(late.gap_first, 1u);
  CHECK_EQ(late.gap_last, 9u);
}

TEST_CASE("memory is bounded: ranges and sessions beyond the bounds are forgotten and counted") {
  SequenceConfig cfg;
  cfg.max_ranges = 3;
  cfg.max_sessions = 2;
  SequenceTracker t(cfg);
  for (uint64_t s = 1; s <= 20; s += 2) t.accept(header(s));  // a hole every other message
  CHECK_EQ(t.missing(1, 100).size(), 3u);
  CHECK_EQ(t.counters().forgotten_messages, 6u);
  t.accept(header(1, 1, 2));
  t.accept(header(1, 1, 3));  // evicts publisher 1, least recently heard
  CHECK_EQ(t.counters().forgotten_sessions, 1u);
  CHECK(t.missing(1, 100).empty());
}

TEST_CASE("would_miss previews the range accept() reports, without recording it") {
  SequenceTracker t;
  CHECK_EQ(t.would_miss(header(5)).first, 1u);
  CHECK_EQ(t.would_miss(header(5)).last, 4u);
  CHECK_EQ(t.counters().gaps, 0u);
  t.accept(header(1));
  CHECK(t.would_miss(header(2)).last < t.would_miss(header(2)).first);  // in order: nothing
  const SequenceRange r = t.would_miss(header(4, 100, 1, true));
  CHECK_EQ(r.first, 2u);
  CHECK_EQ(r.last, 4u);
  const SequenceVerdict v = t.accept(header(4));
  CHECK_EQ(v.gap_first, 2u);
  CHECK_EQ(v.gap_last, 3u);
  CHECK(t.would_miss(header(uint64_t{1} << 40)).last == 0);  // an anomaly is no range to fetch
}

TEST_MAIN()
