// Intraday trading sessions and the mapping from a time of day to a bar.
//
// The day's trading time is numbered in "trading minutes": minute 0 is [09:30, 09:31),
// minute 119 is [11:29, 11:30), minute 120 is [13:00, 13:01) ... minute 239 is [14:59, 15:00).
// Every intraday bar is a run of consecutive trading minutes inside one session, anchored
// at that session's open and labelled by its end (right label): MIN60 is 10:30, 11:30,
// 14:00, 15:00.  A session's last bar is shortened if the period does not divide it.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "ktype.h"
#include "time.h"

namespace hkrt {

struct Session {
  int64_t open_ms;   // ms of day
  int64_t close_ms;  // ms of day
};

class TradingSchedule {
 public:
  // SH / SZ / BJ: auction from 09:15, sessions 09:30-11:30 and 13:00-15:00, 30 s grace.
  static TradingSchedule china_a_share();

  TradingSchedule(std::vector<Session> sessions, int64_t auction_open_ms, int64_t grace_ms);

  static constexpr int kOutside = -1;

  // Trading minute of a time of day, or kOutside.  Opening-auction time maps to minute 0
  // (its trades belong to the first bar); the grace after a close folds into the
  // session's last minute.
  int trading_minute(int64_t ms_of_day) const;
  bool is_auction(int64_t ms_of_day) const {
    return ms_of_day >= auction_open_ms_ && ms_of_day < sessions_.front().open_ms;
  }

  int minutes_per_day() const { return minutes_per_day_; }
  // Trading minutes whose wall-clock time is over at `ms_of_day`.
  int elapsed_minutes(int64_t ms_of_day) const;
  // Trading minutes that are final at `ms_of_day`: as elapsed_minutes, except that a
  // session's last minute stays open through the grace after its close (spots stamped
  // in the grace still belong to it).
  int completed_minutes(int64_t ms_of_day) const;
  // The day's trading is final after this time: the last session's close plus grace (a
  // spot stamped exactly then is still accepted).
  int64_t day_close_ms() const { return sessions_.back().close_ms + grace_ms_; }
  // The trading minute after a bar's last minute (minutes_per_day for the day's last bar).
  int bucket_end_minute(KType k, int bucket) const {
    return bucket + 1 < buckets_per_day(k) ? bucket_first_minute(k, bucket + 1) : minutes_per_day_;
  }
  // Bar index within the day for a trading minute and an intraday period.
  int bucket(KType k, int minute) const { return bucket_of_minute_[ktype_index(k)][minute]; }
  int buckets_per_day(KType k) const { return static_cast<int>(bucket_label_ms_[ktype_index(k)].size()); }
  // Label (ms of day) of a bar of an intraday period.
  int64_t bucket_label(KType k, int bucket) const { return bucket_label_ms_[ktype_index(k)][bucket]; }
  // The trading minute a bar starts with.
  int bucket_first_minute(KType k, int bucket) const { return bucket_first_minute_[ktype_index(k)][bucket]; }

  const std::vector<Session>& sessions() const { return sessions_; }
  int64_t auction_open_ms() const { return auction_open_ms_; }
  int64_t grace_ms() const { return grace_ms_; }

 private:
  std::vector<Session> sessions_;
  int64_t auction_open_ms_;
  int64_t grace_ms_;
  int minutes_per_day_ = 0;
  std::vector<int> session_first_minute_;
  std::array<std::vector<int16_t>, kKTypeCount> bucket_of_minute_;
  std::array<std::vector<int64_t>, kKTypeCount> bucket_label_ms_;
  std::array<std::vector<int16_t>, kKTypeCount> bucket_first_minute_;
};

// Label of the multi-day bar (DAY and longer) that contains a day, as a day number:
// DAY the day itself; WEEK the Friday of its Monday-to-Sunday week; MONTH, QUARTER,
// HALFYEAR, YEAR the last calendar day of the period.
DayNumber period_label(KType k, DayNumber day);
// First calendar day of the period containing the day (Monday for WEEK).
DayNumber period_start(KType k, DayNumber day);

}  // namespace hkrt
