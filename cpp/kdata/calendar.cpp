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

std::optional<DayNumber> TradingCalendar::walk(DayNumber day, int step) const {
  // Ends: the holiday table is finite, so an unbounded walk meets a trading weekday within
  // holidays_.size() + 3 steps; a bounded one stops at the coverage's edge.
  for (DayNumber d = day;; d += step) {
    if (!covers(d)) return std::nullopt;
    if (is_trading_day(d)) return d;
    if ((step > 0 && d == INT64_MAX) || (step < 0 && d == INT64_MIN)) return std::nullopt;
  }
}

std::optional<DayNumber> TradingCalendar::next_trading_day(DayNumber day) const {
  return day == INT64_MAX ? std::nullopt : walk(day + 1, +1);
}

std::optional<DayNumber> TradingCalendar::previous_trading_day(DayNumber day) const {
  return day == INT64_MIN ? std::nullopt : walk(day - 1, -1);
}

std::optional<DayNumber> TradingCalendar::trading_day_on_or_before(DayNumber day) const { return walk(day, -1); }

std::optional<DayNumber> TradingCalendar::trading_day_on_or_after(DayNumber day) const { return walk(day, +1); }

std::vector<DayNumber> TradingCalendar::trading_days(DayNumber first, DayNumber last) const {
  std::vector<DayNumber> out;
  first = std::max(first, first_);
  last = std::min(last, last_);
  if (last < first) return out;
  out.reserve(static_cast<size_t>(std::min<DayNumber>(last - first + 1, 1 << 16)));
  for (DayNumber d = first;; ++d) {
    if (is_trading_day(d)) out.push_back(d);
    if (d == last) break;
  }
  return out;
}

}  // namespace hkrt
