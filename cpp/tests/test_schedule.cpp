#include <string>
#include <vector>

#include "check.h"
#include "kdata/schedule.h"

using namespace hkrt;

namespace {
int64_t hm(int h, int m, int s = 0) { return h * kMsPerHour + m * kMsPerMinute + s * kMsPerSecond; }

std::vector<std::string> labels(const TradingSchedule& sched, KType k) {
  std::vector<std::string> out;
  for (int b = 0; b < sched.buckets_per_day(k); ++b) {
    const int64_t ms = sched.bucket_label(k, b);
    char buf[8];
    std::snprintf(buf, sizeof buf, "%02d:%02d", static_cast<int>(ms / kMsPerHour), static_cast<int>(ms / kMsPerMinute % 60));
    out.push_back(buf);
  }
  return out;
}
}  // namespace

TEST_CASE("trading minutes are closed on the right: (t-1min, t]") {
  const auto sched = TradingSchedule::china_a_share();
  const int64_t ms = 1;
  CHECK_EQ(sched.minutes_per_day(), 240);
  CHECK_EQ(sched.trading_minute(hm(9, 14, 59)), TradingSchedule::kOutside);
  CHECK_EQ(sched.trading_minute(hm(9, 15)), 0);  // opening auction folds into the first bar
  CHECK(sched.is_auction(hm(9, 25)));
  CHECK_EQ(sched.trading_minute(hm(9, 30)), 0);  // the open instant: the first minute
  CHECK_EQ(sched.trading_minute(hm(9, 30, 59)), 0);
  CHECK_EQ(sched.trading_minute(hm(9, 31)), 0);  // totals at 09:31:00.000 cover trades up to it
  CHECK_EQ(sched.trading_minute(hm(9, 31) + ms), 1);
  CHECK_EQ(sched.trading_minute(hm(10, 30)), 59);
  CHECK_EQ(sched.trading_minute(hm(11, 29, 59)), 119);
  CHECK_EQ(sched.trading_minute(hm(11, 30)), 119);
  CHECK_EQ(sched.trading_minute(hm(11, 30, 30)), 119);  // grace folds into the 11:30 bar
  CHECK_EQ(sched.trading_minute(hm(11, 30, 30) + ms), TradingSchedule::kOutside);
  CHECK_EQ(sched.trading_minute(hm(12, 59, 59)), TradingSchedule::kOutside);
  CHECK_EQ(sched.trading_minute(hm(13, 0)), 120);
  CHECK_EQ(sched.trading_minute(hm(13, 1)), 120);
  CHECK_EQ(sched.trading_minute(hm(14, 59, 59)), 239);
  CHECK_EQ(sched.trading_minute(hm(15, 0)), 239);
  // The closing call's prints stamped late still belong to the 15:00 minute, up to 15:05.
  CHECK_EQ(sched.trading_minute(hm(15, 0, 31)), 239);
  CHECK_EQ(sched.trading_minute(hm(15, 5) - ms), 239);
  CHECK(!sched.is_after_hours(hm(15, 5) - ms));
  CHECK_EQ(sched.trading_minute(hm(15, 5)), TradingSchedule::kOutside);
  CHECK(sched.is_after_hours(hm(15, 5)));
  CHECK(sched.is_after_hours(hm(16, 14, 58)));
  CHECK(!sched.is_after_hours(hm(9, 0)));
}

TEST_CASE("elapsed and final minutes") {
  const auto sched = TradingSchedule::china_a_share();
  CHECK_EQ(sched.elapsed_minutes(hm(9, 33, 20)), 3);
  CHECK_EQ(sched.completed_minutes(hm(9, 33, 20)), 3);
  CHECK_EQ(sched.elapsed_minutes(hm(9, 33)), 3);
  CHECK_EQ(sched.completed_minutes(hm(9, 33)), 2);  // a spot stamped 09:33:00.000 may still come
  CHECK_EQ(sched.completed_minutes(hm(11, 30, 30)), 119);
  CHECK_EQ(sched.completed_minutes(hm(11, 30, 30) + 1), 120);
  CHECK_EQ(sched.elapsed_minutes(hm(15, 0)), 240);
  CHECK_EQ(sched.completed_minutes(hm(15, 4, 59)), 239);
  CHECK_EQ(sched.completed_minutes(hm(15, 5)), 240);
  CHECK_EQ(sched.day_close_ms(), hm(15, 5));
}

TEST_CASE("bar labels are right labels anchored at each session's open") {
  const auto sched = TradingSchedule::china_a_share();
  CHECK(labels(sched, KType::MIN60) == (std::vector<std::string>{"10:30", "11:30", "14:00", "15:00"}));
  CHECK(labels(sched, KType::HOUR2) == (std::vector<std::string>{"11:30", "15:00"}));
  CHECK(labels(sched, KType::MIN30) ==
        (std::vector<std::string>{"10:00", "10:30", "11:00", "11:30", "13:30", "14:00", "14:30", "15:00"}));
  const auto m5 = labels(sched, KType::MIN5);
  CHECK_EQ(m5.size(), 48u);
  CHECK_EQ(m5.front(), std::string("09:35"));
  CHECK_EQ(m5[23], std::string("11:30"));
  CHECK_EQ(m5[24], std::string("13:05"));
  CHECK_EQ(m5.back(), std::string("15:00"));
  const auto m1 = labels(sched, KType::MIN);
  CHECK_EQ(m1.size(), 240u);
  CHECK_EQ(m1.front(), std::string("09:31"));
  CHECK_EQ(m1[119], std::string("11:30"));
  CHECK_EQ(m1[120], std::string("13:01"));
  CHECK_EQ(sched.buckets_per_day(KType::MIN3), 80);
  CHECK_EQ(sched.buckets_per_day(KType::MIN15), 16);
  // 10:30:00.000 is in the 10:30 hour bar; 10:30:00.001 starts the 11:30 one.
  CHECK_EQ(sched.bucket(KType::MIN60, sched.trading_minute(hm(10, 29, 59))), 0);
  CHECK_EQ(sched.bucket(KType::MIN60, sched.trading_minute(hm(10, 30))), 0);
  CHECK_EQ(sched.bucket(KType::MIN60, sched.trading_minute(hm(10, 30) + 1)), 1);
  CHECK_EQ(sched.bucket(KType::MIN60, sched.trading_minute(hm(13, 0))), 2);
}

TEST_CASE("a period that does not divide a session ends with a short bar") {
  // A market with a 150-minute morning: the hour bars are 10:30, 11:30 and a 30-minute 12:00.
  TradingSchedule sched({{hm(9, 30), hm(12, 0)}, {hm(13, 0), hm(16, 0)}}, hm(9, 30), 0);
  CHECK(labels(sched, KType::MIN60) == (std::vector<std::string>{"10:30", "11:30", "12:00", "14:00", "15:00", "16:00"}));
  CHECK_THROWS(TradingSchedule({{hm(13, 0), hm(12, 0)}}, hm(9, 0), 0));
  CHECK_THROWS(TradingSchedule({{hm(9, 30), hm(15, 0)}}, hm(9, 0), 0, hm(14, 0)));  // cutoff before the close
}

TEST_CASE("period labels: the period's last trading day") {
  // 2026: Mid-Autumn Friday 09-25; National Day 10-01, 10-02, 10-05 .. 10-07.
  TradingCalendar cal({days_from_civil(2026, 9, 25), days_from_civil(2026, 10, 1), days_from_civil(2026, 10, 2),
                       days_from_civil(2026, 10, 5), days_from_civil(2026, 10, 6), days_from_civil(2026, 10, 7)});
  const DayNumber wed = days_from_civil(2026, 11, 18);
  CHECK_EQ(period_label(KType::WEEK, wed, cal), days_from_civil(2026, 11, 20));
  CHECK_EQ(period_label(KType::WEEK, days_from_civil(2026, 11, 16), cal), days_from_civil(2026, 11, 20));
  CHECK_EQ(period_start(KType::WEEK, wed), days_from_civil(2026, 11, 16));
  CHECK_EQ(period_end(KType::WEEK, wed), days_from_civil(2026, 11, 22));
  CHECK_EQ(period_label(KType::WEEK, days_from_civil(2026, 9, 23), cal), days_from_civil(2026, 9, 24));
  CHECK_EQ(period_label(KType::WEEK, days_from_civil(2026, 9, 29), cal), days_from_civil(2026, 9, 30));
  CHECK_EQ(period_label(KType::WEEK, days_from_civil(2026, 10, 8), cal), days_from_civil(2026, 10, 9));
  CHECK_EQ(period_label(KType::MONTH, days_from_civil(2026, 10, 8), cal), days_from_civil(2026, 10, 30));
  CHECK_EQ(period_label(KType::MONTH, days_from_civil(2024, 2, 5), cal), days_from_civil(2024, 2, 29));
  CHECK_EQ(period_label(KType::QUARTER, days_from_civil(2026, 8, 3), cal), days_from_civil(2026, 9, 30));
  CHECK_EQ(period_start(KType::QUARTER, days_from_civil(2026, 8, 3)), days_from_civil(2026, 7, 1));
  CHECK_EQ(period_label(KType::HALFYEAR, days_from_civil(2026, 3, 3), cal), days_from_civil(2026, 6, 30));
  CHECK_EQ(period_label(KType::HALFYEAR, days_from_civil(2026, 7, 1), cal), days_from_civil(2026, 12, 31));
  CHECK_EQ(period_label(KType::YEAR, days_from_civil(2025, 7, 1), cal), days_from_civil(2025, 12, 31));
  CHECK_EQ(period_start(KType::YEAR, days_from_civil(2026, 7, 1)), days_from_civil(2026, 1, 1));
  CHECK_EQ(period_label(KType::DAY, wed, cal), wed);
  // Past the calendar's coverage no spot can come, so the covered days decide.
  TradingCalendar short_cover = cal;
  short_cover.set_coverage(days_from_civil(2005, 1, 1), days_from_civil(2026, 12, 30));
  CHECK_EQ(period_label(KType::WEEK, days_from_civil(2026, 12, 28), short_cover), days_from_civil(2026, 12, 30));
  CHECK_EQ(period_label(KType::YEAR, days_from_civil(2026, 3, 2), short_cover), days_from_civil(2026, 12, 30));
}

TEST_MAIN()
