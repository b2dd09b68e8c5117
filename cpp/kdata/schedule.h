// Intraday trading sessions and the mapping from a time of day to a bar.
//
// The day's trading time is numbered in "trading minutes".  A snapshot's cumulative totals
// at T cover the trades up to T, so a minute is closed on the right: minute 0 is
// (09:30, 09:31], minute 119 is (11:29, 11:30], minute 120 is (13:00, 13:01] ... minute
// 239 is (14:59, 15:00].  A session's open instant (09:30:00.000, 13:00:00.000) belongs
// to its first minute, and the opening auction (09:15-09:30) folds into minute 0.
// Every intraday bar is a run of consecutive trading minutes inside one session, anchored
// at that session's open and labelled by its end (right label): MIN60 is 10:30, 11:30,
// 14:00, 15:00.  A session's last bar is shortened if the period does not divide it.
//
// After the last session's close, snapshots stamped before the close cutoff (15:05, when
// after-hours fixed-price trading opens) still belong to the last minute: feeds stamp the
// closing call auction's prints late.  From the cutoff on, a snapshot is after hours.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "calendar.h"
#include "ktype.h"
#include "time.h"

namespace hkrt {

struct Session {
  int64_t open_ms;   // ms of day
  int64_t close_ms;  // ms of day
};

class TradingSchedule {
 public:
  // SH / SZ / BJ: auction from 09:15, sessions 09:30-11:30 and 13:00-15:00, 30 s grace
  // after 11:30, close cutoff 15:05 (after-hours trading on STAR and ChiNext opens then).
  static TradingSchedule china_a_share();

  // close_cutoff_ms: time of day from which a snapshot is after hours; 0 = the last
  // session's close plus grace (no separate closing window).
  TradingSchedule(std::vector<Session> sessions, int64_t auction_open_ms, int64_t grace_ms,
                  int64_t close_cutoff_ms = 0);

  static constexpr int kOutside = -1;

  // Trading minute of a time of day, or kOutside.  Opening-auction time maps to minute 0
  // (its trades belong to the first bar); the grace after a close (up to the close cutoff
  // after the last session) folds into the session's last minute.
  int trading_minute(int64_t ms_of_day) const;
  // From the close cutoff to the end of the day: after-hours trading, in no bar.
  bool is_after_hours(int64_t ms_of_day) const { return ms_of_day >= close_cutoff_ms_ && ms_of_day < kMsPerDay; }
  bool is_auction(int64_t ms_of_day) const {
    return ms_of_day >= auction_open_ms_ && ms_of_day < sessions_.front().open_ms;
  }

  int minutes_per_day() const { return minutes_per_day_; }
  // Trading minutes whose wall-clock time is over at `ms_of_day`.
  int elapsed_minutes(int64_t ms_of_day) const;
  // Trading minutes that are final at `ms_of_day`: a minute is final once time is past its
  // end (a spot stamped exactly at the end still belongs to it), and a session's last
  // minute stays open through the grace after its close (through the close cutoff after
  // the last session).
  int completed_minutes(int64_t ms_of_day) const;
  // The day's regular trading is final from this time of day on (the close cutoff).
  int64_t day_close_ms() const { return close_cutoff_ms_; }
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
  int64_t close_cutoff_ms() const { return close_cutoff_ms_; }

 private:
  // Exclusive end of the window after session i's close whose spots fold into its last minute.
  int64_t window_end(size_t i) const {
    return i + 1 == sessions_.size() ? close_cutoff_ms_ : sessions_[i].close_ms + grace_ms_ + 1;
  }

  std::vector<Session> sessions_;
  int64_t auction_open_ms_;
  int64_t grace_ms_;
  int64_t close_cutoff_ms_;
  int minutes_per_day_ = 0;
  std::vector<int> session_first_minute_;
  std::array<std::vector<int16_t>, kKTypeCount> bucket_of_minute_;
  std::array<std::vector<int64_t>, kKTypeCount> bucket_label_ms_;
  std::array<std::vector<int16_t>, kKTypeCount> bucket_first_minute_;
};

// Label of the multi-day bar (DAY and longer) that contains a trading day, as a day
// number: DAY the day itself; WEEK (Monday to Sunday), MONTH, QUARTER, HALFYEAR and YEAR
// the period's last trading day, as Tongdaxin, JoinQuant, RiceQuant and baostock label
// them.  Days past the calendar's coverage cannot hold spots, so the label is the last
// trading day the calendar covers.
DayNumber period_label(KType k, DayNumber day, const TradingCalendar& calendar);
// First and last calendar day of the period containing the day (Monday and Sunday for WEEK).
DayNumber period_start(KType k, DayNumber day);
DayNumber period_end(KType k, DayNumber day);

}  // namespace hkrt
