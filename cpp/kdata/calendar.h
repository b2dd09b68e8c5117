// Which days the exchange trades.  Injected into the engine (never read from the wall
// clock) so that any past day replays exactly and tests can declare their own holidays.
#pragma once

#include <vector>

#include "time.h"

namespace hkrt {

class TradingCalendar {
 public:
  TradingCalendar() = default;  // Monday to Friday, no holidays
  explicit TradingCalendar(std::vector<DayNumber> holidays);

  void add_holiday(DayNumber day);
  bool is_holiday(DayNumber day) const;
  bool is_trading_day(DayNumber day) const { return weekday(day) < 5 && !is_holiday(day); }
  const std::vector<DayNumber>& holidays() const { return holidays_; }

 private:
  std::vector<DayNumber> holidays_;  // sorted, unique
};

}  // namespace hkrt
