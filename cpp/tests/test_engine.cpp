#include <string>
#include <vector>

#include "check.h"
#include "kdata/engine.h"

using namespace hkrt;

namespace {
const Symbol kSym = *parse_symbol("SH600000");
const DayNumber kFri = days_from_civil(2026, 11, 20);  // a Friday

Spot spot(int h, int m, int s, double close, double volume, double amount, double open = 10.0, double high = 0,
          double low = 0, DayNumber day = kFri) {
  Spot sp;
  sp.symbol = kSym;
  sp.datetime = start_of_day(day) + h * kMsPerHour + m * kMsPerMinute + s * kMsPerSecond;
  sp.open = open;
  sp.high = high > 0 ? high : std::max(open, close);
  sp.low = low > 0 ? low : std::min(open, close);
  sp.close = close;
  sp.volume = volume;
  sp.amount = amount;
  return sp;
}

TimestampMs at(int h, int m, DayNumber day = kFri) { return start_of_day(day) + h * kMsPerHour + m * kMsPerMinute; }

EngineConfig config(std::vector<KType> ks) {
  EngineConfig c;
  c.ktypes = std::move(ks);
  return c;
}
}  // namespace

TEST_CASE("auction volume and open go to the first minute bar; later bars take differences") {
  KDataEngine e(config({KType::MIN, KType::DAY}));
  CHECK(e.ingest(spot(9, 25, 0, 10.0, 1000, 10000)).outcome == IngestOutcome::Accepted);
  e.ingest(spot(9, 30, 20, 10.2, 1500, 15100, 10.0, 10.2, 10.0));
  e.ingest(spot(9, 31, 5, 10.1, 1800, 18130, 10.0, 10.2, 10.0));
  const auto bars = e.bars(kSym, KType::MIN);
  CHECK_EQ(bars.size(), 2u);
  CHECK_EQ(bars[0].datetime, at(9, 31));
  CHECK_EQ(bars[0].open, 10.0);
  CHECK_EQ(bars[0].high, 10.2);
  CHECK_EQ(bars[0].close, 10.2);
  CHECK_EQ(bars[0].volume, 1500.0);
  CHECK_EQ(bars[0].amount, 15100.0);
  CHECK_EQ(bars[1].datetime, at(9, 32));
  CHECK_EQ(bars[1].volume, 300.0);
  CHECK_EQ(bars[1].amount, 3030.0);
  const auto day = e.bars(kSym, KType::DAY);
  CHECK_EQ(day.size(), 1u);
  CHECK_EQ(day[0].datetime, start_of_day(kFri));
  CHECK_EQ(day[0].volume, 1800.0);
  CHECK_EQ(e.stats().carry_in, 0u);
}

TEST_CASE("a cold start after the first bar is carry-in, kept out of every intraday bar") {
  KDataEngine e(config({KType::MIN, KType::MIN5, KType::DAY}));
  e.ingest(spot(10, 40, 10, 10.5, 50000, 520000, 10.0, 10.8, 9.9));
  e.ingest(spot(10, 40, 40, 10.6, 50300, 523180, 10.0, 10.8, 9.9));
  auto bars = e.bars(kSym, KType::MIN);
  CHECK_EQ(bars.size(), 1u);
  CHECK_EQ(bars[0].datetime, at(10, 41));
  CHECK_EQ(bars[0].volume, 300.0);
  CHECK_EQ(bars[0].open, 10.5);
  CHECK_EQ(bars[0].high, 10.6);  // the day high 10.8 was made before the agent started
  CHECK_EQ(bars[0].low, 10.5);
  auto carry = e.carry_in(kSym);
  CHECK(carry.has_value());
  CHECK_EQ(carry->volume, 50000.0);
  CHECK_EQ(e.bars(kSym, KType::DAY)[0].volume, 50300.0);
  CHECK_EQ(e.bars(kSym, KType::MIN5)[0].datetime, at(10, 45));
  CHECK_EQ(e.stats().carry_in, 1u);
}

TEST_CASE("a new day high between spots enters the bar that receives the later spot") {
  KDataEngine e(config({KType::MIN}));
  e.ingest(spot(9, 30, 10, 10.0, 100, 1000, 10.0, 10.0, 10.0));
  e.ingest(spot(9, 31, 10, 10.1, 200, 2010, 10.0, 10.5, 9.8));
  const auto bars = e.bars(kSym, KType::MIN);
  CHECK_EQ(bars[1].high, 10.5);
  CHECK_EQ(bars[1].low, 9.8);
  CHECK_EQ(bars[0].high, 10.0);
}

TEST_CASE("empty minutes become flat zero-volume bars; coarse bars open at the flat price") {
  KDataEngine e(config({KType::MIN, KType::MIN5}));
  e.ingest(spot(9, 30, 10, 10.0, 100, 1000));
  e.ingest(spot(9, 33, 30, 10.3, 400, 4090, 10.0, 10.3, 10.0));  // minutes 09:32, 09:33 empty
  auto bars = e.bars(kSym, KType::MIN);
  CHECK_EQ(bars.size(), 4u);
  CHECK_EQ(bars[1].datetime, at(9, 32));
  CHECK_EQ(bars[1].volume, 0.0);
  CHECK_EQ(bars[1].open, 10.0);
  CHECK_EQ(bars[1].close, 10.0);
  // Two whole minutes passed with no spot: the 300 shares may have traded in any of them,
  // so they are gap volume, in DAY only.
  CHECK_EQ(bars[3].volume, 0.0);
  CHECK_EQ(e.day_totals(kSym)->gap_volume, 300.0);
  CHECK(bars[1].filled && bars[2].filled && !bars[3].filled && !bars[0].filled);
  e.ingest(spot(9, 37, 0, 10.4, 500, 5130, 10.0, 10.4, 10.0));  // the 09:40 bucket starts at 09:35: flat first
  const auto m5 = e.bars(kSym, KType::MIN5);
  CHECK_EQ(m5.size(), 2u);
  CHECK_EQ(m5[1].datetime, at(9, 40));
  CHECK_EQ(m5[1].open, 10.3);
  CHECK_EQ(m5[1].low, 10.3);
  CHECK_EQ(m5[1].close, 10.4);
  CHECK_EQ(e.stats().filled_bars, 4u);  // MIN 09:32, 09:33, then 09:35, 09:36
}

TEST_CASE("out-of-order, decreasing and duplicate spots change nothing") {
  KDataEngine e(config({KType::MIN}));
  const Spot a = spot(9, 35, 0, 10.0, 1000, 10000);
  CHECK(e.ingest(a).outcome == IngestOutcome::Accepted);
  CHECK(e.ingest(a).outcome == IngestOutcome::Duplicate);
  auto older = spot(9, 34, 0, 10.0, 900, 9000);
  IngestResult r = e.ingest(older);
  CHECK(r.outcome == IngestOutcome::Rejected && r.reason == RejectReason::OutOfOrder);
  auto conflicting = spot(9, 35, 0, 10.1, 1000, 10000);  // same time and totals, another price
  r = e.ingest(conflicting);
  CHECK(r.outcome == IngestOutcome::Rejected && r.reason == RejectReason::ConflictingDuplicate);
  auto lower = spot(9, 36, 0, 10.0, 900, 10000);
  r = e.ingest(lower);
  CHECK(r.outcome == IngestOutcome::Rejected && r.reason == RejectReason::CumulativeDecreased);
  const auto s = e.stats();
  CHECK_EQ(s.accepted, 1u);
  CHECK_EQ(s.duplicates, 1u);
  CHECK_EQ(s.rejected[static_cast<int>(RejectReason::OutOfOrder)], 1u);
  CHECK_EQ(s.rejected[static_cast<int>(RejectReason::CumulativeDecreased)], 1u);
  CHECK_EQ(e.bars(kSym, KType::MIN).size(), 1u);
}

TEST_CASE("weekend, holiday, lunch and bad values are rejected by reason") {
  EngineConfig c = config({KType::MIN});
  c.calendar.add_holiday(days_from_civil(2026, 10, 1));
  KDataEngine e(std::move(c));
  auto check_reason = [&](const Spot& s, RejectReason want) {
    auto r = e.ingest(s);
    CHECK(r.outcome == IngestOutcome::Rejected && r.reason == want);
  };
  check_reason(spot(10, 0, 0, 10, 1, 10, 10, 0, 0, days_from_civil(2026, 11, 21)), RejectReason::NonTradingDay);
  check_reason(spot(10, 0, 0, 10, 1, 10, 10, 0, 0, days_from_civil(2026, 10, 1)), RejectReason::NonTradingDay);
  check_reason(spot(12, 0, 0, 10, 1, 10), RejectReason::OutsideSession);
  check_reason(spot(9, 10, 0, 10, 1, 10), RejectReason::OutsideSession);
  check_reason(spot(11, 31, 0, 10, 1, 10), RejectReason::OutsideSession);
  check_reason(spot(10, 0, 0, std::nan(""), 1, 10), RejectReason::InvalidValue);
  check_reason(spot(10, 0, 0, 10, -1, 10), RejectReason::InvalidValue);
  check_reason(spot(10, 0, 0, 0, 100, 10, 0), RejectReason::InvalidValue);  // volume without a price
  CHECK_EQ(e.stats().rejected_total(), 8u);
  CHECK_EQ(e.stats().accepted, 0u);
}

TEST_CASE("MIN60 and HOUR2 carry exchange labels; grace folds into 11:30 and 15:00") {
  KDataEngine e(config({KType::MIN60, KType::HOUR2}));
  double v = 0;
  // A quote every minute (no trade) between the trades, so no trade falls in a feed gap.
  auto quiet_until = [&](int h, int m) {
    for (TimestampMs t = e.newest_accepted() + kMsPerMinute; t < at(h, m); t += kMsPerMinute) {
      const int64_t tod = t - start_of_day(kFri);
      if (tod > at(11, 30) - start_of_day(kFri) && tod < at(13, 0) - start_of_day(kFri)) continue;
      e.ingest(spot(static_cast<int>(tod / kMsPerHour), static_cast<int>(tod / kMsPerMinute % 60),
                    static_cast<int>(tod / kMsPerSecond % 60), 10, v, v * 10));
    }
  };
  for (auto t : {std::make_pair(9, 45), {10, 45}, {11, 30}, {13, 30}, {14, 30}}) {
    if (v > 0) quiet_until(t.first, t.second);
    v += 100;
    e.ingest(spot(t.first, t.second, t.first == 11 ? 20 : 0, 10, v, v * 10));
  }
  quiet_until(15, 0);
  v += 100;
  e.ingest(spot(15, 0, 25, 10, v, v * 10));
  const auto h = e.bars(kSym, KType::MIN60);
  CHECK_EQ(h.size(), 4u);
  CHECK_EQ(h[0].datetime, at(10, 30));
  CHECK_EQ(h[1].datetime, at(11, 30));
  CHECK_EQ(h[1].volume, 200.0);
  CHECK_EQ(h[2].datetime, at(14, 0));
  CHECK_EQ(h[3].datetime, at(15, 0));
  CHECK_EQ(h[3].volume, 200.0);
  const auto h2 = e.bars(kSym, KType::HOUR2);
  CHECK_EQ(h2.size(), 2u);
  CHECK_EQ(h2[0].datetime, at(11, 30));
  CHECK_EQ(h2[0].volume, 200.0);  // the 09:45 first spot is carry-in
  CHECK_EQ(h2[1].datetime, at(15, 0));
  CHECK_EQ(h2[1].volume, 300.0);
}

TEST_CASE("week and month bars are exact aggregates of their day bars") {
  KDataEngine e(config({KType::DAY, KType::WEEK, KType::MONTH}));
  const DayNumber mon = days_from_civil(2026, 11, 16);
  e.ingest(spot(14, 0, 0, 10.5, 7000, 72000, 10.0, 10.8, 9.9, mon));
  e.ingest(spot(15, 0, 0, 10.4, 7100, 73000, 10.0, 10.8, 9.9, mon));
  e.ingest(spot(10, 0, 0, 10.6, 2000, 21000, 10.4, 10.9, 10.3, mon + 1));
  e.ingest(spot(11, 0, 0, 10.7, 3000, 32000, 10.4, 11.0, 10.3, mon + 1));
  const auto w = e.bars(kSym, KType::WEEK);
  CHECK_EQ(w.size(), 1u);
  CHECK_EQ(w[0].datetime, start_of_day(days_from_civil(2026, 11, 20)));
  CHECK_EQ(w[0].open, 10.0);
  CHECK_EQ(w[0].high, 11.0);
  CHECK_EQ(w[0].low, 9.9);
  CHECK_EQ(w[0].close, 10.7);
  CHECK_EQ(w[0].volume, 10100.0);
  CHECK_EQ(w[0].amount, 105000.0);
  const auto m = e.bars(kSym, KType::MONTH);
  CHECK_EQ(m[0].datetime, start_of_day(days_from_civil(2026, 11, 30)));
  CHECK_EQ(m[0].volume, 10100.0);
}

TEST_CASE("advance_to closes elapsed minutes with flat bars, and a day rollover completes the day") {
  KDataEngine e(config({KType::MIN, KType::HOUR2}));
  e.ingest(spot(14, 58, 30, 10.0, 100, 1000));
  e.advance_to(at(14, 59) + 30 * kMsPerSecond);
  CHECK_EQ(e.bars(kSym, KType::MIN).size(), 1u);  // 14:59 bar holds the spot; 15:00 not over yet
  e.advance_to(at(15, 1));
  auto bars = e.bars(kSym, KType::MIN);
  CHECK_EQ(bars.size(), 2u);
  CHECK_EQ(bars[1].datetime, at(15, 0));
  e.ingest(spot(9, 30, 0, 10.0, 50, 500, 10.0, 0, 0, kFri + 3));
  CHECK_EQ(e.bars(kSym, KType::MIN).size(), 3u);
}

TEST_CASE("preloaded day history continues into live week bars") {
  KDataEngine e(config({KType::DAY, KType::WEEK}));
  const DayNumber mon = days_from_civil(2026, 11, 16);
  std::vector<Bar> hist = {{start_of_day(mon - 3), 9.0, 9.5, 8.9, 9.4, 500, 4700},
                           {start_of_day(mon), 9.4, 10.1, 9.3, 10.0, 800, 7900}};
  e.preload(kSym, KType::DAY, hist.data(), hist.size());
  e.ingest(spot(10, 0, 0, 10.2, 300, 3060, 10.0, 10.3, 9.95, mon + 1));
  const auto w = e.bars(kSym, KType::WEEK);
  CHECK_EQ(w.size(), 1u);
  CHECK_EQ(w[0].open, 9.4);
  CHECK_EQ(w[0].volume, 1100.0);
  CHECK_EQ(w[0].low, 9.3);
  CHECK_EQ(e.bars(kSym, KType::DAY).size(), 3u);
  std::vector<Bar> unsorted = {hist[1], hist[0]};
  CHECK_THROWS(e.preload(kSym, KType::DAY, unsorted.data(), unsorted.size()));
  CHECK_THROWS(e.bars(kSym, KType::MIN));  // not enabled
}

TEST_CASE("a shared buffer survives growth of its series") {
  KDataEngine e(config({KType::MIN}));
  e.ingest(spot(9, 30, 0, 10.0, 100, 1000));
  auto shared = e.share_bars(kSym, KType::MIN);
  CHECK_EQ(shared.second, 1u);
  double v = 100;
  for (int m = 31; m < 60; ++m) {
    v += 10;
    e.ingest(spot(9, m, 30, 10.0, v, v * 10));
  }
  CHECK_EQ(shared.first->data()[0].datetime, at(9, 31));
  CHECK_EQ(e.bars(kSym, KType::MIN).size(), 30u);
}

namespace {
std::vector<std::string> labels_of(const CompletedBars& done, KType k) {
  std::vector<std::string> out;
  for (const CompletedBar& c : done)
    if (c.ktype == k) out.push_back(format_timestamp(c.bar.datetime).substr(11, 5));
  return out;
}
}  // namespace

TEST_CASE("a bar completes when a later bucket begins; skipped minutes complete flat") {
  KDataEngine e(config({KType::MIN, KType::MIN5}));
  CompletedBars done;
  e.ingest(spot(9, 30, 10, 10.0, 100, 1000), &done);
  e.ingest(spot(9, 30, 50, 10.1, 200, 2010), &done);
  CHECK(done.empty());
  e.ingest(spot(9, 33, 10, 10.2, 300, 3030), &done);
  CHECK(labels_of(done, KType::MIN) == (std::vector<std::string>{"09:31", "09:32", "09:33"}));
  CHECK(labels_of(done, KType::MIN5).empty());
  CHECK_EQ(done[0].bar.volume, 200.0);
  CHECK_EQ(done[0].symbol_key, kSym.key());
  CHECK_EQ(done[1].bar.close, 10.1);  // flat at the last price
}

TEST_CASE("advance_to completes a session's last bar only after the grace") {
  KDataEngine e(config({KType::MIN, KType::MIN30, KType::HOUR2}));
  CompletedBars done;
  e.ingest(spot(11, 29, 10, 10.0, 100, 1000), &done);
  e.advance_to(at(11, 30), &done);
  CHECK(done.empty());  // 11:30:00-11:30:30 spots still belong to the 11:30 bar
  e.ingest(spot(11, 30, 20, 10.1, 150, 1505), &done);
  e.advance_to(at(11, 30) + 30 * kMsPerSecond, &done);
  CHECK(done.empty());  // a spot stamped 11:30:30.000 would still belong
  e.advance_to(at(11, 30) + 30 * kMsPerSecond + 1, &done);
  CHECK(labels_of(done, KType::MIN) == (std::vector<std::string>{"11:30"}));
  CHECK(labels_of(done, KType::MIN30) == (std::vector<std::string>{"11:30"}));
  CHECK(labels_of(done, KType::HOUR2) == (std::vector<std::string>{"11:30"}));
  CHECK_EQ(done[0].bar.volume, 50.0);  // the grace spot is in it (100 is carry-in)
  done.clear();
  e.advance_to(at(11, 31), &done);
  e.advance_to(at(13, 0), &done);
  CHECK(done.empty());  // nothing reported twice
}

TEST_CASE("DAY completes with the day; WEEK and MONTH with the last trading day of their period") {
  KDataEngine e(config({KType::DAY, KType::WEEK, KType::MONTH}));
  CompletedBars done;
  const DayNumber thu = days_from_civil(2026, 11, 19), fri = thu + 1;
  e.ingest(spot(10, 0, 0, 10.0, 100, 1000, 10.0, 0, 0, thu), &done);
  e.advance_to(at(15, 4, thu) + 59 * kMsPerSecond, &done);
  CHECK(done.empty());  // late closing-auction prints may still come until 15:05
  e.advance_to(at(15, 5, thu), &done);
  CHECK_EQ(done.size(), 1u);  // DAY only: Friday is in the same week
  CHECK(done[0].ktype == KType::DAY);
  e.ingest(spot(10, 0, 0, 10.5, 300, 3100, 10.2, 0, 0, fri), &done);
  e.advance_to(at(9, 0, fri + 3), &done);  // Monday: Friday ended the week
  CHECK_EQ(done.size(), 3u);
  CHECK(done[1].ktype == KType::DAY && done[2].ktype == KType::WEEK);
  CHECK_EQ(done[2].bar.volume, 400.0);
  done.clear();
  const DayNumber nov30 = days_from_civil(2026, 11, 30);  // a Monday, the last trading day of November
  e.ingest(spot(10, 0, 0, 10.0, 100, 1000, 10.0, 0, 0, nov30), &done);
  e.advance_to(at(15, 5, nov30), &done);
  CHECK_EQ(done.size(), 2u);
  CHECK(done[1].ktype == KType::MONTH);
  CHECK_EQ(done[1].bar.datetime, start_of_day(nov30));
  CHECK_EQ(done[1].bar.volume, 500.0);
}

TEST_CASE("a straggler that amends a completed bar is counted") {
  KDataEngine e(config({KType::MIN}));
  CompletedBars done;
  e.ingest(spot(9, 30, 10, 10.0, 100, 1000), &done);
  e.advance_to(at(9, 33) + 1, &done);
  CHECK_EQ(done.size(), 3u);
  done.clear();
  e.ingest(spot(9, 31, 30, 10.1, 150, 1505), &done);
  CHECK_EQ(e.stats().amended_bars, 1u);
  // Reported again, marked amended: 09:32 holds the straggler, 09:33 is re-flattened at its price.
  CHECK(labels_of(done, KType::MIN) == (std::vector<std::string>{"09:32", "09:33"}));
  CHECK(done[0].amended && done[1].amended);
  CHECK_EQ(done[0].bar.volume, 50.0);
  CHECK(!done[0].bar.filled);
  CHECK(done[1].bar.filled);
  CHECK_EQ(done[1].bar.close, 10.1);
}

TEST_CASE("a straggler after the day was completed reaches DAY before the next day (no lost amendment)") {
  KDataEngine e(config({KType::MIN, KType::MIN60, KType::DAY, KType::WEEK}));
  CompletedBars done;
  const DayNumber thu = days_from_civil(2026, 11, 19), fri = thu + 1;
  e.ingest(spot(14, 0, 30, 10.0, 1000, 10000, 10.0, 0, 0, thu), &done);
  e.advance_to(at(15, 6, thu), &done);
  done.clear();
  CHECK(e.ingest(spot(14, 1, 20, 10.2, 1500, 15100, 10.0, 0, 0, thu), &done).outcome == IngestOutcome::Accepted);
  bool day_amended = false;
  for (const auto& c : done)
    if (c.ktype == KType::DAY) day_amended = c.amended && c.bar.volume == 1500.0;
  CHECK(day_amended);
  e.ingest(spot(9, 30, 5, 10.3, 100, 1030, 10.3, 0, 0, fri), &done);  // before anything reads Thursday
  const auto day = e.bars((*parse_symbol("SH600000")), KType::DAY);
  CHECK_EQ(day.size(), 2u);
  CHECK_EQ(day[0].volume, 1500.0);
  const auto hour = e.bars((*parse_symbol("SH600000")), KType::MIN60);
  double thursday_1500 = -1;
  for (const Bar& b : hour)
    if (b.datetime == at(15, 0, thu)) thursday_1500 = b.volume;
  CHECK_EQ(thursday_1500, 500.0);
  CHECK_EQ(e.bars((*parse_symbol("SH600000")), KType::WEEK).back().volume, 1600.0);
}

TEST_CASE("gap volume: a whole minute without a spot keeps its trades out of intraday bars") {
  KDataEngine e(config({KType::MIN, KType::DAY}));
  e.ingest(spot(9, 20, 0, 10.0, 0, 0, 0, 0, 0));  // pre-open, nothing traded
  e.ingest(spot(10, 40, 10, 10.5, 50000, 520000, 10.0, 10.8, 9.9));
  e.ingest(spot(10, 40, 40, 10.6, 50300, 523180, 10.0, 10.8, 9.9));
  const Symbol sym = (*parse_symbol("SH600000"));
  const auto min = e.bars(sym, KType::MIN);
  CHECK_EQ(min.size(), 1u);
  CHECK_EQ(min[0].open, 10.5);
  CHECK_EQ(min[0].high, 10.6);
  CHECK_EQ(min[0].low, 10.5);
  CHECK_EQ(min[0].volume, 300.0);
  const auto t = e.day_totals(sym);
  CHECK(t && t->gap_volume == 50000.0 && t->gap_amount == 520000.0 && t->gap_spans == 1u && t->carry_volume == 0.0);
  const auto day = e.bars(sym, KType::DAY);
  CHECK_EQ(day[0].volume, 50300.0);
  CHECK_EQ(day[0].high, 10.8);
  CHECK_EQ(day[0].low, 9.9);
  // 10:40:40 -> 11:29:50 is a second gap; 11:29:50 -> 13:00:10 crosses only the lunch break.
  e.ingest(spot(11, 29, 50, 10.6, 50400, 524240, 10.0, 10.8, 9.9));
  CHECK_EQ(e.day_totals(sym)->gap_spans, 2u);
  e.ingest(spot(13, 0, 10, 10.6, 50500, 525300, 10.0, 10.8, 9.9));
  CHECK_EQ(e.day_totals(sym)->gap_spans, 2u);
  CHECK_EQ(e.day_totals(sym)->gap_volume, 50100.0);
  CHECK_EQ(e.stats().gap_volume_days, 1u);
}

TEST_CASE("after hours: late closing prints count until 15:05, later trades are kept apart") {
  KDataEngine e(config({KType::MIN, KType::DAY}));
  const Symbol sym = (*parse_symbol("SH688001"));
  Spot s = spot(14, 59, 50, 10.0, 1000000, 10000000);
  s.symbol = sym;
  e.ingest(s);
  s = spot(15, 2, 10, 10.0, 1060000, 10600000);
  s.symbol = sym;
  CHECK(e.ingest(s).outcome == IngestOutcome::Accepted);
  s = spot(15, 20, 0, 10.0, 1080000, 10800000);
  s.symbol = sym;
  CHECK(e.ingest(s).outcome == IngestOutcome::Accepted);
  CHECK_EQ(e.bars(sym, KType::DAY)[0].volume, 1060000.0);
  CHECK_EQ(e.bars(sym, KType::MIN).back().volume, 60000.0);  // 1,000,000 is carry-in (the first spot was 14:59:50)
  const auto t = e.day_totals(sym);
  CHECK(t && t->after_hours_volume == 20000.0 && t->after_hours_amount == 200000.0);
  CHECK_EQ(e.stats().after_hours_days, 1u);
}

TEST_CASE("gap volume needs a silent symbol: repeated quotes and change-only feeds vouch for it") {
  const Symbol quiet = *parse_symbol("SZ000001");
  auto one = [](const Symbol& sym, int h, int m, int sec, double close, double volume) {
    Spot s = spot(h, m, sec, close, volume, volume * close);
    s.symbol = sym;
    return s;
  };
  {
    // A source stamping a quiet symbol with its last trade's time repeats it unchanged each
    // cycle: duplicates, yet they tell it did not trade, so its next trade is no gap.
    KDataEngine e(config({KType::MIN}));
    e.ingest(one(quiet, 9, 30, 10, 10.0, 100));
    for (int m = 31; m < 40; ++m) {
      e.ingest(one(kSym, 9, m, 10, 10.0, 100.0 * m));  // the rest of the feed moves on
      e.ingest(one(quiet, 9, 30, 10, 10.0, 100));       // unchanged
    }
    e.ingest(one(quiet, 9, 40, 5, 10.1, 400));
    CHECK_EQ(e.day_totals(quiet)->gap_volume, 0.0);
    CHECK_EQ(e.bars(quiet, KType::MIN).back().volume, 300.0);
  }
  {
    // A change-only feed (QMT push) sends nothing for a quiet symbol; while the feed talks,
    // its next trade is no gap.  After the whole feed fell silent it is.
    KDataEngine e(config({KType::MIN}));
    auto ingest_changes = [&](const Spot& s) {
      const uint32_t key = s.symbol.key();
      SpotColumns c;
      c.n = 1;
      c.symbol_keys = &key;
      c.datetime = &s.datetime;
      c.open = &s.open;
      c.high = &s.high;
      c.low = &s.low;
      c.close = &s.close;
      c.volume = &s.volume;
      c.amount = &s.amount;
      c.changes_only = true;
      e.ingest_columns(c);
    };
    ingest_changes(one(quiet, 9, 30, 10, 10.0, 100));
    for (int m = 31; m < 40; ++m) ingest_changes(one(kSym, 9, m, 10, 10.0, 100.0 * m));
    ingest_changes(one(quiet, 9, 40, 5, 10.1, 400));
    CHECK_EQ(e.day_totals(quiet)->gap_volume, 0.0);
    ingest_changes(one(kSym, 9, 45, 10, 10.0, 5000));  // nothing from 09:40 to 09:45: the feed was silent
    ingest_changes(one(quiet, 9, 45, 20, 10.2, 600));
    CHECK_EQ(e.day_totals(quiet)->gap_volume, 200.0);
  }
}

TEST_CASE("gap repair from minute history: the docs' worked example") {
  KDataEngine e(config({KType::MIN, KType::MIN5, KType::DAY}));
  e.ingest(spot(9, 30, 10, 10.0, 1000, 10000, 10.0, 10.0, 10.0));
  e.ingest(spot(9, 31, 10, 10.1, 1200, 12020, 10.0, 10.1, 10.0));
  e.ingest(spot(9, 34, 20, 10.3, 2000, 20200, 10.0, 10.5, 9.95));
  e.ingest(spot(9, 35, 30, 10.2, 2300, 23260, 10.0, 10.5, 9.95));
  CHECK_EQ(e.day_totals(kSym)->gap_volume, 800.0);
  std::vector<Bar> source = {{at(9, 31), 10.0, 10.0, 10.0, 10.0, 1000, 10000},
                             {at(9, 32), 10.1, 10.1, 10.1, 10.1, 200, 2020},
                             {at(9, 33), 10.2, 10.4, 10.1, 10.3, 500, 5110},
                             {at(9, 34), 10.3, 10.5, 9.95, 10.3, 300, 3070}};
  std::vector<Bar> halved = source;
  for (Bar& b : halved) b.volume /= 2;
  CHECK_EQ(e.repair_gaps(kSym, halved.data(), halved.size()).mismatched, 1u);  // disagrees: nothing changes
  CHECK_EQ(e.day_totals(kSym)->gap_volume, 800.0);
  CompletedBars done;
  const auto r = e.repair_gaps(kSym, source.data(), source.size(), &done);
  CHECK_EQ(r.repaired, 1u);
  CHECK_EQ(r.volume, 800.0);
  const auto min = e.bars(kSym, KType::MIN);
  CHECK_EQ(min[2].volume, 500.0);
  CHECK_EQ(min[2].high, 10.4);
  CHECK(!min[2].filled);
  CHECK_EQ(min[3].low, 9.95);
  const auto m5 = e.bars(kSym, KType::MIN5);
  CHECK_EQ(m5[0].volume, 2000.0);
  CHECK_EQ(m5[0].high, 10.5);
  CHECK_EQ(e.day_totals(kSym)->gap_volume, 0.0);
  CHECK_EQ(e.day_totals(kSym)->gap_spans, 0u);
  bool all_amended = !done.empty();
  for (const auto& c : done) all_amended = all_amended && c.amended;
  CHECK(all_amended);
}

TEST_MAIN()
