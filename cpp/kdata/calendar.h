// Which days the exchange trades.  Injected into the engine (never read from the wall
// clock) so that any past day replays exactly and tests can declare their own holidays.
#pragma once

#include <cstdint>
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
  DayNumber coverage_first() const { return first_; }
  DayNumber coverage_last() const { return last_; }

  void add_holiday(DayNumber day);
  bool is_holiday(DayNumber day) const;
  bool is_trading_day(DayNumber day) const { return weekday(day) < 5 && !is_holiday(day); }
  const std::vector<DayNumber>& holidays() const { return holidays_; }

 private:
  std::vector<DayNumber> holidays_;  // sorted, unique
  DayNumber first_ = INT64_MIN, last_ = INT64_MAX;
};

}  // namespace hkrt
