// Which days the exchange trades.  Injected into the engine (never read from the wall
// clock) so that any past day replays exactly and tests can declare their own holidays.
//
// This is the one implementation of the trading-day rules: the engine, the period labels
// (schedule.h) and Python's hkrt.TradingCalendar (through cpp/bindings/calendar.cpp) all
// ask it, so "the next trading day" cannot mean two things.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "time.h"

namespace hkrt {

class TradingCalendar {
 public:
  TradingCalendar() = default;  // Monday to Friday, no holidays
  explicit TradingCalendar(std::vector<DayNumber> holidays);

  // The days the holiday table is known to be right for: a spot outside them is rejected
  // (outside_calendar) instead of being aggregated on a guessed calendar.  Unbounded by
  // default (a calendar a test declares itself).
  void set_coverage(DayNumber first, DayNumber last) {
    first_ = first;
    last_ = last;
  }
  bool covers(DayNumber day) const { return day >= first_ && day <= last_; }
  bool bounded() const { return first_ != INT64_MIN || last_ != INT64_MAX; }
  DayNumber coverage_first() const { return first_; }
  DayNumber coverage_last() const { return last_; }

  void add_holiday(DayNumber day);
  bool is_holiday(DayNumber day) const;
  // Weekends never trade; a weekday trades unless it is a holiday.  Answers for any day,
  // covered or not: callers that must not guess check covers() first.
  bool is_trading_day(DayNumber day) const { return weekday(day) < 5 && !is_holiday(day); }
  const std::vector<DayNumber>& holidays() const { return holidays_; }

  // Walking the calendar.  Each answer is a day the calendar vouches for: the walk stops
  // with nullopt as soon as it would step onto a day outside the coverage (the calendar
  // cannot say whether that day trades, so it cannot say which trading day comes next).
  // The day the walk starts from need not be covered itself.
  std::optional<DayNumber> next_trading_day(DayNumber day) const;      // the first after `day`
  std::optional<DayNumber> previous_trading_day(DayNumber day) const;  // the last before `day`
  std::optional<DayNumber> trading_day_on_or_before(DayNumber day) const;  // `day` itself when it trades
  std::optional<DayNumber> trading_day_on_or_after(DayNumber day) const;

  // Trading days in [first, last] that the calendar covers, in order (empty when last < first).
  std::vector<DayNumber> trading_days(DayNumber first, DayNumber last) const;

 private:
  // The first trading day met walking from `day` (inclusive) in steps of `step` (+1 or -1).
  std::optional<DayNumber> walk(DayNumber day, int step) const;

  std::vector<DayNumber> holidays_;  // sorted, unique
  DayNumber first_ = INT64_MIN, last_ = INT64_MAX;
};

}  // namespace hkrt
