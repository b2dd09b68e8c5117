#include "schedule.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace hkrt {

TradingSchedule TradingSchedule::china_a_share() {
  return TradingSchedule({{9 * kMsPerHour + 30 * kMsPerMinute, 11 * kMsPerHour + 30 * kMsPerMinute},
                          {13 * kMsPerHour, 15 * kMsPerHour}},
                         9 * kMsPerHour + 15 * kMsPerMinute, 30 * kMsPerSecond, 15 * kMsPerHour + 5 * kMsPerMinute);
}

TradingSchedule::TradingSchedule(std::vector<Session> sessions, int64_t auction_open_ms, int64_t grace_ms,
                                 int64_t close_cutoff_ms)
    : sessions_(std::move(sessions)), auction_open_ms_(auction_open_ms), grace_ms_(grace_ms) {
  if (sessions_.empty()) throw std::invalid_argument("a trading schedule needs at least one session");
  const int64_t last_grace_end = sessions_.back().close_ms + grace_ms_ + 1;
  close_cutoff_ms_ = close_cutoff_ms == 0 ? last_grace_end : close_cutoff_ms;
  if (close_cutoff_ms_ < last_grace_end || close_cutoff_ms_ > kMsPerDay)
    throw std::invalid_argument("the close cutoff must be after the last session's close and grace");
  int64_t previous_end = auction_open_ms_;
  for (const Session& s : sessions_) {
    if (s.open_ms % kMsPerMinute || s.close_ms % kMsPerMinute || s.close_ms <= s.open_ms ||
        s.open_ms < previous_end || s.close_ms + grace_ms_ > kMsPerDay)
      throw std::invalid_argument("sessions must be whole minutes, ordered, non-overlapping and within a day");
    session_first_minute_.push_back(minutes_per_day_);
    minutes_per_day_ += static_cast<int>((s.close_ms - s.open_ms) / kMsPerMinute);
    previous_end = s.close_ms + grace_ms_;
  }
  for (KType k : kAllKTypes) {
    const int n = intraday_minutes(k);
    if (n == 0) continue;
    auto& of_minute = bucket_of_minute_[ktype_index(k)];
    auto& labels = bucket_label_ms_[ktype_index(k)];
    auto& firsts = bucket_first_minute_[ktype_index(k)];
    for (size_t i = 0; i < sessions_.size(); ++i) {
      const Session& s = sessions_[i];
      const int length = static_cast<int>((s.close_ms - s.open_ms) / kMsPerMinute);
      const int first_bucket = static_cast<int>(labels.size());
      for (int start = 0; start < length; start += n) {
        const int end = start + n < length ? start + n : length;
        labels.push_back(s.open_ms + end * kMsPerMinute);
        firsts.push_back(static_cast<int16_t>(session_first_minute_[i] + start));
      }
      for (int m = 0; m < length; ++m) of_minute.push_back(static_cast<int16_t>(first_bucket + m / n));
    }
  }
}

int TradingSchedule::trading_minute(int64_t t) const {
  if (t >= auction_open_ms_ && t < sessions_.front().open_ms) return 0;
  for (size_t i = 0; i < sessions_.size(); ++i) {
    const Session& s = sessions_[i];
    if (t >= s.open_ms && t < window_end(i)) {
      const int length = static_cast<int>((s.close_ms - s.open_ms) / kMsPerMinute);
      // (open + m min, open + (m+1) min] is minute m: ceil(elapsed / 1 min) - 1, the open
      // instant itself in minute 0.
      int m = t == s.open_ms ? 0 : static_cast<int>((t - s.open_ms - 1) / kMsPerMinute);
      if (m >= length) m = length - 1;
      return session_first_minute_[i] + m;
    }
  }
  return kOutside;
}

int TradingSchedule::elapsed_minutes(int64_t t) const {
  int done = 0;
  for (const Session& s : sessions_) {
    if (t >= s.close_ms)
      done += static_cast<int>((s.close_ms - s.open_ms) / kMsPerMinute);
    else if (t > s.open_ms)
      done += static_cast<int>((t - s.open_ms) / kMsPerMinute);
  }
  return done;
}

int TradingSchedule::completed_minutes(int64_t t) const {
  int done = 0;
  for (size_t i = 0; i < sessions_.size(); ++i) {
    const Session& s = sessions_[i];
    const int length = static_cast<int>((s.close_ms - s.open_ms) / kMsPerMinute);
    if (t >= window_end(i))  // no spot can belong to the session any more
      done += length;
    else if (t > s.open_ms)  // minutes whose end is strictly before t
      done += std::min(length - 1, static_cast<int>((t - s.open_ms - 1) / kMsPerMinute));
  }
  return done;
}

DayNumber period_start(KType k, DayNumber day) {
  const CivilDate c = civil_from_days(day);
  switch (k) {
    case KType::WEEK:
      return day - weekday(day);
    case KType::MONTH:
      return days_from_civil(c.year, c.month, 1);
    case KType::QUARTER:
      return days_from_civil(c.year, (c.month - 1) / 3 * 3 + 1, 1);
    case KType::HALFYEAR:
      return days_from_civil(c.year, c.month <= 6 ? 1 : 7, 1);
    case KType::YEAR:
      return days_from_civil(c.year, 1, 1);
    default:
      return day;
  }
}

DayNumber period_end(KType k, DayNumber day) {
  const CivilDate c = civil_from_days(day);
  switch (k) {
    case KType::WEEK:
      return day - weekday(day) + 6;  // Sunday
    case KType::MONTH:
      return days_from_civil(c.year, c.month, days_in_month(c.year, c.month));
    case KType::QUARTER: {
      const uint32_t last_month = (c.month - 1) / 3 * 3 + 3;
      return days_from_civil(c.year, last_month, days_in_month(c.year, last_month));
    }
    case KType::HALFYEAR:
      return c.month <= 6 ? days_from_civil(c.year, 6, 30) : days_from_civil(c.year, 12, 31);
    case KType::YEAR:
      return days_from_civil(c.year, 12, 31);
    default:
      return day;
  }
}

DayNumber period_label(KType k, DayNumber day, const TradingCalendar& calendar) {
  if (!is_multi_day(k)) return day;
  // Days past the coverage hold no spots, so the period ends, at the latest, with the last
  // covered day; `day` trades, so the walk back stops at it at the latest.
  const auto last = calendar.trading_day_on_or_before(std::min(period_end(k, day), calendar.coverage_last()));
  return std::max(last.value_or(day), day);
}

}  // namespace hkrt
