// The engine's fast path (a spot in the minute of the symbol's last spot updates only MIN and
// DAY; the coarser forming bars take it when the minute settles), advance_to()'s sweep floors
// and reserve(): each must give exactly the bars of the plain per-spot rules.
#include <algorithm>
#include <vector>

#include "check.h"
#include "kdata/engine.h"

using namespace hkrt;

namespace {
const Symbol kA = *parse_symbol("SH600000");
const Symbol kB = *parse_symbol("SZ000001");
const DayNumber kFri = days_from_civil(2026, 11, 20);  // a Friday

Spot spot(Symbol sym, int h, int m, int s, double close, double volume, double amount, double high = 0,
          double low = 0) {
  Spot sp;
  sp.symbol = sym;
  sp.datetime = start_of_day(kFri) + h * kMsPerHour + m * kMsPerMinute + s * kMsPerSecond;
  sp.open = 10.0;
  sp.high = high > 0 ? high : std::max(10.0, close);
  sp.low = low > 0 ? low : std::min(10.0, close);
  sp.close = close;
  sp.volume = volume;
  sp.amount = amount;
  return sp;
}

TimestampMs at(int h, int m) { return start_of_day(kFri) + h * kMsPerHour + m * kMsPerMinute; }

EngineConfig config(std::vector<KType> ks) {
  EngineConfig c;
  c.ktypes = std::move(ks);
  return c;
}

void check_bar(const Bar& b, TimestampMs label, double o, double h, double l, double c, double v, double a) {
  CHECK_EQ(b.datetime, label);
  CHECK_EQ(b.open, o);
  CHECK_EQ(b.high, h);
  CHECK_EQ(b.low, l);
  CHECK_EQ(b.close, c);
  CHECK_EQ(b.volume, v);
  CHECK_NEAR(b.amount, a, 1e-6);
}

// The bars of period k re-aggregated from MIN bars: first open, max high, min low, last close, sums.
std::vector<Bar> fold_minutes(const std::vector<Bar>& minutes, const KDataEngine& e, KType k) {
  const TradingSchedule& sched = e.schedule();
  std::vector<Bar> out;
  for (const Bar& m : minutes) {
    const TimestampMs day_start = start_of_day(day_of(m.datetime));
    const int minute = sched.trading_minute(m.datetime - day_start);
    const TimestampMs label = day_start + sched.bucket_label(k, sched.bucket(k, minute));
    if (out.empty() || out.back().datetime != label) {
      Bar b = m;
      b.datetime = label;
      out.push_back(b);
    } else {
      Bar& b = out.back();
      b.high = std::max(b.high, m.high);
      b.low = std::min(b.low, m.low);
      b.close = m.close;
      b.volume += m.volume;
      b.amount += m.amount;
    }
  }
  return out;
}
}  // namespace

TEST_CASE("spots within a minute reach the coarser forming bars, also after a read in mid-minute") {
  KDataEngine e(config({KType::MIN, KType::MIN3, KType::MIN5, KType::DAY}));
  e.ingest(spot(kA, 9, 30, 5, 10.0, 100, 1000));
  e.ingest(spot(kA, 9, 30, 20, 10.3, 300, 3060, 10.3, 10.0));
  e.ingest(spot(kA, 9, 30, 40, 9.9, 600, 6030, 10.3, 9.9));
  e.ingest(spot(kA, 9, 31, 10, 10.1, 700, 7040, 10.3, 9.9));
  e.ingest(spot(kA, 9, 31, 30, 10.4, 1000, 10160, 10.4, 9.9));
  e.ingest(spot(kA, 9, 31, 50, 10.2, 1100, 11180, 10.4, 9.9));
  // By hand: minute 0 holds spots 1-3, minute 1 spots 4-6 (still forming).
  auto minutes = e.bars(kA, KType::MIN);
  CHECK_EQ(minutes.size(), 2u);
  check_bar(minutes[0], at(9, 31), 10.0, 10.3, 9.9, 9.9, 600, 6030);
  check_bar(minutes[1], at(9, 32), 10.1, 10.4, 10.1, 10.2, 500, 5150);
  check_bar(e.bars(kA, KType::MIN3).at(0), at(9, 33), 10.0, 10.4, 9.9, 10.2, 1100, 11180);
  check_bar(e.bars(kA, KType::MIN5).at(0), at(9, 35), 10.0, 10.4, 9.9, 10.2, 1100, 11180);
  // More spots of the same minute after the read: the read settled the first ones, these follow.
  e.ingest(spot(kA, 9, 31, 55, 10.5, 1200, 12230, 10.5, 9.9));
  e.ingest(spot(kA, 9, 31, 58, 9.8, 1250, 12720, 10.5, 9.8));
  check_bar(e.bars(kA, KType::MIN).at(1), at(9, 32), 10.1, 10.5, 9.8, 9.8, 650, 6690);
  check_bar(e.bars(kA, KType::MIN3).at(0), at(9, 33), 10.0, 10.5, 9.8, 9.8, 1250, 12720);
  check_bar(e.bars(kA, KType::MIN5).at(0), at(9, 35), 10.0, 10.5, 9.8, 9.8, 1250, 12720);
  check_bar(e.bars(kA, KType::DAY).at(0), start_of_day(kFri), 10.0, 10.5, 9.8, 9.8, 1250, 12720);
}

TEST_CASE("deferred coarse updates give the bars of per-spot updates, and the fold of the MIN bars") {
  // Engine `lazy` is never read until the end; `eager` is read after every spot, which settles
  // every spot into the coarser bars at once (the per-spot rule).  Two symbols, a 3 s feed
  // with quiet stretches, a straggler-free day through the close.
  KDataEngine lazy(config({kAllKTypes.begin(), kAllKTypes.end()}));
  KDataEngine eager(config({kAllKTypes.begin(), kAllKTypes.end()}));
  double volume[2] = {0, 0}, amount[2] = {0, 0}, high[2] = {10, 10}, low[2] = {10, 10};
  uint32_t rng = 12345;
  auto next = [&rng] { return (rng = rng * 1103515245u + 12345u) >> 8; };
  for (int second = 9 * 3600 + 25 * 60; second <= 15 * 3600; second += 3) {
    if (second > 11 * 3600 + 30 * 60 && second < 13 * 3600) continue;
    for (int s = 0; s < 2; ++s) {
      if (next() % 7 == 0) continue;  // a quiet quote now and then
      const double price = 10.0 + static_cast<double>(next() % 200) / 100.0 - 1.0;
      const double traded = static_cast<double>(next() % 5) * 100;
      volume[s] += traded;
      amount[s] += traded * price;
      high[s] = std::max(high[s], price);
      low[s] = std::min(low[s], price);
      const Spot sp = spot(s ? kB : kA, second / 3600, second / 60 % 60, second % 60, price, volume[s], amount[s],
                           high[s], low[s]);
      CHECK(lazy.ingest(sp).outcome == eager.ingest(sp).outcome);
      eager.bars(sp.symbol, KType::MIN3);
    }
  }
  lazy.advance_to(at(15, 5));
  eager.advance_to(at(15, 5));
  for (Symbol sym : {kA, kB}) {
    const auto minutes = lazy.bars(sym, KType::MIN);
    CHECK_EQ(minutes.size(), 240u);
    for (KType k : kAllKTypes) {
      const auto got = lazy.bars(sym, k), want = eager.bars(sym, k);
      CHECK_EQ(got.size(), want.size());
      for (size_t i = 0; i < std::min(got.size(), want.size()); ++i)
        check_bar(got[i], want[i].datetime, want[i].open, want[i].high, want[i].low, want[i].close, want[i].volume,
                  want[i].amount);
      if (!is_intraday(k)) continue;
      const auto folded = fold_minutes(minutes, lazy, k);
      CHECK_EQ(got.size(), folded.size());
      for (size_t i = 0; i < std::min(got.size(), folded.size()); ++i)
        check_bar(got[i], folded[i].datetime, folded[i].open, folded[i].high, folded[i].low, folded[i].close,
                  folded[i].volume, folded[i].amount);
    }
  }
  CHECK_EQ(lazy.stats().accepted, eager.stats().accepted);
  CHECK_EQ(lazy.stats().filled_bars, eager.stats().filled_bars);
}

TEST_CASE("advance_to skips cycles with nothing due, and still catches a symbol that started after a sweep") {
  KDataEngine e(config({KType::MIN, KType::MIN5}));
  CompletedBars done;
  e.ingest(spot(kA, 9, 30, 10, 10.0, 100, 1000));
  e.advance_to(at(9, 30) + 30 * kMsPerSecond, &done);
  CHECK(done.empty());
  e.advance_to(at(9, 31) + 30 * kMsPerSecond, &done);  // minute 09:31 is final
  CHECK_EQ(done.size(), 1u);
  CHECK_EQ(done[0].bar.datetime, at(9, 31));
  done.clear();
  e.ingest(spot(kB, 9, 31, 40, 20.0, 500, 10000), &done);  // B's first spot, after the sweep
  e.advance_to(at(9, 31) + 50 * kMsPerSecond, &done);       // nothing due for anyone
  CHECK(done.empty());
  e.advance_to(at(9, 32) + 10 * kMsPerSecond, &done);  // 09:32 final: A's flat bar and B's traded one
  CHECK_EQ(done.size(), 2u);
  bool a_flat = false, b_traded = false;
  for (const CompletedBar& c : done) {
    CHECK_EQ(c.bar.datetime, at(9, 32));
    if (c.symbol_key == kA.key()) a_flat = c.bar.filled && c.bar.close == 10.0 && c.bar.volume == 0;
    if (c.symbol_key == kB.key()) b_traded = !c.bar.filled && c.bar.close == 20.0 && c.bar.volume == 0;  // carry-in
  }
  CHECK(a_flat);
  CHECK(b_traded);
  done.clear();
  e.advance_to(at(9, 32) + 20 * kMsPerSecond, &done);
  CHECK(done.empty());
  e.advance_to(at(15, 5), &done);  // the day is over: every remaining bar of both
  size_t a_minutes = 0, b_minutes = 0;
  for (const CompletedBar& c : done)
    if (c.ktype == KType::MIN) (c.symbol_key == kA.key() ? a_minutes : b_minutes) += 1;
  CHECK_EQ(a_minutes, 238u);  // 09:33 .. 15:00
  CHECK_EQ(b_minutes, 238u);
  CHECK_EQ(e.bars(kA, KType::MIN).size(), 240u);
  CHECK_EQ(e.bars(kB, KType::MIN).size(), 239u);  // from 09:32
  done.clear();
  e.advance_to(at(15, 10), &done);
  CHECK(done.empty());
}

TEST_CASE("advance_to's dense sweep entries follow each symbol's day and dues across boundaries and days") {
  KDataEngine e(config({KType::MIN, KType::MIN5, KType::DAY}));
  CompletedBars done;
  // Both trade every minute to 09:36: each minute boundary raises every symbol's dues, which
  // the next sweep must see (nothing reported twice or early).
  for (int m = 0; m <= 5; ++m) {
    e.ingest(spot(kA, 9, 30 + m, 30, 10.0 + m, 100.0 * (m + 1), 1000.0 * (m + 1)), &done);
    e.ingest(spot(kB, 9, 30 + m, 30, 20.0 + m, 200.0 * (m + 1), 4000.0 * (m + 1)), &done);
    e.advance_to(at(9, 30 + m) + 40 * kMsPerSecond, &done);
  }
  size_t min_bars = 0, min5_bars = 0;
  for (const CompletedBar& c : done) (c.ktype == KType::MIN ? min_bars : min5_bars) += 1;
  CHECK_EQ(min_bars, 2u * 5);  // 09:31 .. 09:35 of each (09:36 still forming)
  CHECK_EQ(min5_bars, 2u * 1);  // 09:35
  done.clear();
  // A trades on the next trading day (Monday); B does not.  A's own spot finishes its Friday,
  // the sweep on Monday finishes B's, and Monday's close completes A's Monday once.
  const TimestampMs monday = start_of_day(kFri + 3);
  Spot a = spot(kA, 9, 31, 0, 30.0, 50, 1500);
  a.datetime = monday + 9 * kMsPerHour + 31 * kMsPerMinute;
  e.ingest(a, &done);
  size_t a_days = 0, b_days = 0;
  for (const CompletedBar& c : done)
    if (c.ktype == KType::DAY) (c.symbol_key == kA.key() ? a_days : b_days) += 1;
  CHECK_EQ(a_days, 1u);
  CHECK_EQ(b_days, 0u);
  done.clear();
  e.advance_to(monday + 9 * kMsPerHour + 31 * kMsPerMinute + 30 * kMsPerSecond, &done);
  a_days = b_days = 0;
  for (const CompletedBar& c : done) {
    // B's Friday, filled to its close; of A's Monday only its first minute is final
    const bool a_first_minute =
        c.symbol_key == kA.key() && c.ktype == KType::MIN && c.bar.datetime == monday + 9 * kMsPerHour + 31 * kMsPerMinute;
    CHECK(c.symbol_key == kB.key() || a_first_minute);
    if (c.ktype == KType::DAY) ++b_days;
  }
  CHECK_EQ(b_days, 1u);
  done.clear();
  e.advance_to(monday + 15 * kMsPerHour + 5 * kMsPerMinute, &done);
  a_days = b_days = 0;
  for (const CompletedBar& c : done)
    if (c.ktype == KType::DAY) (c.symbol_key == kA.key() ? a_days : b_days) += 1;
  CHECK_EQ(a_days, 1u);
  CHECK_EQ(b_days, 0u);
  CHECK_EQ(e.bars(kA, KType::DAY).size(), 2u);
  CHECK_EQ(e.bars(kB, KType::DAY).size(), 1u);
  done.clear();
  e.advance_to(monday + 15 * kMsPerHour + 10 * kMsPerMinute, &done);
  CHECK(done.empty());
}

TEST_CASE("a straggler after advance_to ran ahead of a fast minute amends the reported bar") {
  KDataEngine e(config({KType::MIN, KType::MIN5}));
  CompletedBars done;
  e.ingest(spot(kA, 9, 30, 10, 10.0, 100, 1000));
  e.ingest(spot(kA, 9, 30, 20, 10.1, 200, 2010));  // fast
  e.advance_to(at(9, 31) + 30 * kMsPerSecond, &done);
  CHECK_EQ(done.size(), 1u);
  done.clear();
  e.ingest(spot(kA, 9, 30, 50, 10.2, 250, 2520), &done);  // minute 0 again, after it was reported
  CHECK_EQ(done.size(), 1u);
  CHECK(done.at(0).amended);
  check_bar(done.at(0).bar, at(9, 31), 10.0, 10.2, 10.0, 10.2, 250, 2520);
  check_bar(e.bars(kA, KType::MIN5).at(0), at(9, 35), 10.0, 10.2, 10.0, 10.2, 250, 2520);
  CHECK_EQ(e.stats().amended_bars, 1u);
}

TEST_CASE("reserve pre-sizes states and series without listing the symbols") {
  KDataEngine plain(config({KType::MIN, KType::MIN5, KType::DAY, KType::WEEK}));
  KDataEngine reserved(config({KType::MIN, KType::MIN5, KType::DAY, KType::WEEK}));
  const size_t before = reserved.memory_bytes();
  const uint32_t keys[] = {kA.key(), kB.key(), kInvalidSymbolKey};
  reserved.reserve(keys, 3);
  CHECK(reserved.symbols().empty());
  CHECK_EQ(reserved.stats().symbols, 0u);
  CHECK(reserved.memory_bytes() >= before + 2 * (240 + 48) * sizeof(Bar));
  CHECK(!reserved.carry_in(kA).has_value());
  for (KDataEngine* e : {&plain, &reserved}) {
    e->ingest(spot(kA, 9, 30, 10, 10.0, 100, 1000));
    e->ingest(spot(kA, 9, 33, 10, 10.2, 300, 3040));
  }
  CHECK_EQ(reserved.symbols().size(), 1u);
  CHECK_EQ(reserved.stats().symbols, 1u);
  for (KType k : {KType::MIN, KType::MIN5, KType::DAY, KType::WEEK}) {
    const auto got = reserved.bars(kA, k), want = plain.bars(kA, k);
    CHECK_EQ(got.size(), want.size());
    for (size_t i = 0; i < std::min(got.size(), want.size()); ++i)
      check_bar(got[i], want[i].datetime, want[i].open, want[i].high, want[i].low, want[i].close, want[i].volume,
                want[i].amount);
  }
  const size_t sized = reserved.memory_bytes();
  reserved.reserve_next_day();
  CHECK(reserved.memory_bytes() > sized);
  CHECK(reserved.bars(kB, KType::MIN).empty());
}

TEST_MAIN()
