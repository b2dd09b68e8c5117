#include "calendar.h"

#include <algorithm>

namespace hkrt {

TradingCalendar::TradingCalendar(std::vector<DayNumber> holidays) : holidays_(std::move(holidays)) {
  std::sort(holidays_.begin(), holidays_.end());
  holidays_.erase(std::unique(holidays_.begin(), holidays_.end()), holidays_.end());
}

void TradingCalendar::add_holiday(DayNumber day) {
  auto it = std::lower_bound(holidays_.begin(), holidays_.end(), day);
  if (it == holidays_.end() || *it != day) holidays_.insert(it, day);
}

bool TradingCalendar::is_holiday(DayNumber day) const {
  return std::binary_search(holidays_.begin(), holidays_.end(), day);
}

}  // namespace hkrt
