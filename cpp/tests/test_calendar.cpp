// The trading calendar: the one implementation of "is it a trading day" and of walking
// from one trading day to the next (the engine, period labels and Python all use it).
#include <vector>

#include "check.h"
#include "kdata/calendar.h"

using namespace hkrt;

namespace {
DayNumber d(int y, unsigned m, unsigned day) { return days_from_civil(y, m, day); }
constexpr DayNumber kNone = -999999;  // stands for nullopt in CHECK_EQ
DayNumber or_none(std::optional<DayNumber> v) { return v.value_or(kNone); }

// Mid-Autumn (Fri 2026-09-25) and National Day (Thu 10-01 .. Wed 10-07).
TradingCalendar autumn_2026() {
  TradingCalendar c({d(2026, 9, 25), d(2026, 10, 1), d(2026, 10, 2), d(2026, 10, 5), d(2026, 10, 6),
                     d(2026, 10, 7)});
  c.set_coverage(d(2026, 1, 1), d(2026, 12, 31));
  return c;
}
}  // namespace

TEST_CASE("weekends never trade; a weekday trades unless it is a holiday") {
  const TradingCalendar weekdays;
  CHECK(weekdays.is_trading_day(d(2026, 11, 20)));   // Friday
  CHECK(!weekdays.is_trading_day(d(2026, 11, 21)));  // Saturday
  CHECK(!weekdays.is_trading_day(d(2026, 11, 22)));  // Sunday
  CHECK(!weekdays.bounded());
  const TradingCalendar c = autumn_2026();
  CHECK(c.bounded());
  CHECK(c.is_holiday(d(2026, 10, 1)) && !c.is_trading_day(d(2026, 10, 1)));
  CHECK(!c.is_holiday(d(2026, 10, 3)));  // a Saturday is closed without being a holiday
}

TEST_CASE("next and previous trading day skip weekends and holidays") {
  const TradingCalendar c = autumn_2026();
  CHECK_EQ(or_none(c.next_trading_day(d(2026, 9, 24))), d(2026, 9, 28));  // Fri holiday + weekend
  CHECK_EQ(or_none(c.next_trading_day(d(2026, 9, 30))), d(2026, 10, 8));
  CHECK_EQ(or_none(c.next_trading_day(d(2026, 10, 3))), d(2026, 10, 8));  // from a closed day
  CHECK_EQ(or_none(c.previous_trading_day(d(2026, 10, 8))), d(2026, 9, 30));
  CHECK_EQ(or_none(c.previous_trading_day(d(2026, 9, 28))), d(2026, 9, 24));
  CHECK_EQ(or_none(c.next_trading_day(d(2026, 11, 16))), d(2026, 11, 17));  // an ordinary Monday
}

TEST_CASE("the trading day on or before / on or after a day") {
  const TradingCalendar c = autumn_2026();
  CHECK_EQ(or_none(c.trading_day_on_or_before(d(2026, 9, 30))), d(2026, 9, 30));  // it trades: itself
  CHECK_EQ(or_none(c.trading_day_on_or_before(d(2026, 10, 4))), d(2026, 9, 30));
  CHECK_EQ(or_none(c.trading_day_on_or_after(d(2026, 10, 4))), d(2026, 10, 8));
  CHECK_EQ(or_none(c.trading_day_on_or_after(d(2026, 10, 8))), d(2026, 10, 8));
}

TEST_CASE("a walk never steps onto a day the calendar does not cover") {
  const TradingCalendar c = autumn_2026();
  CHECK_EQ(or_none(c.next_trading_day(d(2026, 12, 31))), kNone);  // 2027 is not covered
  CHECK_EQ(or_none(c.previous_trading_day(d(2026, 1, 1))), kNone);
  CHECK_EQ(or_none(c.trading_day_on_or_before(d(2027, 1, 4))), kNone);  // the day itself is uncovered
  CHECK_EQ(or_none(c.next_trading_day(d(2026, 12, 30))), d(2026, 12, 31));
  // Started just outside, the walk's first day is inside: answered.
  CHECK_EQ(or_none(c.next_trading_day(d(2025, 12, 31))), d(2026, 1, 1));
  // A covered span with no trading day in it: nothing to answer.
  TradingCalendar closed({d(2026, 12, 28), d(2026, 12, 29)});
  closed.set_coverage(d(2026, 12, 26), d(2026, 12, 29));
  CHECK_EQ(or_none(closed.next_trading_day(d(2026, 12, 26))), kNone);
  CHECK_EQ(or_none(closed.trading_day_on_or_before(d(2026, 12, 29))), kNone);
}

TEST_CASE("an unbounded calendar walks past long runs of holidays") {
  std::vector<DayNumber> closed;
  for (DayNumber day = d(2030, 1, 1); day <= d(2030, 3, 31); ++day) closed.push_back(day);
  const TradingCalendar c(closed);
  CHECK_EQ(or_none(c.next_trading_day(d(2029, 12, 31))), d(2030, 4, 1));  // Monday
  CHECK_EQ(or_none(c.previous_trading_day(d(2030, 4, 1))), d(2029, 12, 31));
  CHECK_EQ(or_none(c.next_trading_day(INT64_MAX)), kNone);  // no overflow at the ends
  CHECK_EQ(or_none(c.previous_trading_day(INT64_MIN)), kNone);
}

TEST_CASE("trading days between two days, clipped to the coverage") {
  const TradingCalendar c = autumn_2026();
  const auto october = c.trading_days(d(2026, 10, 1), d(2026, 10, 31));
  CHECK_EQ(october.size(), size_t{17});  // 22 weekdays, 5 closed for National Day
  CHECK_EQ(october.front(), d(2026, 10, 8));
  CHECK_EQ(october.back(), d(2026, 10, 30));
  CHECK(c.trading_days(d(2026, 10, 9), d(2026, 10, 8)).empty());
  CHECK_EQ(c.trading_days(d(2026, 12, 28), d(2027, 1, 8)).size(), size_t{4});  // 2027 is not covered
  for (size_t i = 1; i < october.size(); ++i) CHECK_EQ(or_none(c.next_trading_day(october[i - 1])), october[i]);
}

TEST_MAIN()
