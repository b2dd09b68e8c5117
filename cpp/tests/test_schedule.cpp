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

TEST_CASE("trading minutes: auction, sessions, grace, lunch and after-hours") {
  const auto sched = TradingSchedule::china_a_share();
  CHECK_EQ(sched.minutes_per_day(), 240);
  CHECK_EQ(sched.trading_minute(hm(9, 14, 59)), TradingSchedule::kOutside);
  CHECK_EQ(sched.trading_minute(hm(9, 15)), 0);  // opening auction folds into the first bar
  CHECK(sched.is_auction(hm(9, 25)));
  CHECK_EQ(sched.trading_minute(hm(9, 30)), 0);
  CHECK_EQ(sched.trading_minute(hm(9, 30, 59)), 0);
  CHECK_EQ(sched.trading_minute(hm(9, 31)), 1);
  CHECK_EQ(sched.trading_minute(hm(11, 29, 59)), 119);
  CHECK_EQ(sched.trading_minute(hm(11, 30, 30)), 119);  // grace folds into the 11:30 bar
  CHECK_EQ(sched.trading_minute(hm(11, 30, 31)), TradingSchedule::kOutside);
  CHECK_EQ(sched.trading_minute(hm(12, 59, 59)), TradingSchedule::kOutside);
  CHECK_EQ(sched.trading_minute(hm(13, 0)), 120);
  CHECK_EQ(sched.trading_minute(hm(14, 59, 59)), 239);
  CHECK_EQ(sched.trading_minute(hm(15, 0, 30)), 239);
  CHECK_EQ(sched.trading_minute(hm(15, 0, 31)), TradingSchedule::kOutside);
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
  // 10:29:59 is in the 10:30 hour bar; 10:30:00 starts the 11:30 one.
  CHECK_EQ(sched.bucket(KType::MIN60, sched.trading_minute(hm(10, 29, 59))), 0);
  CHECK_EQ(sched.bucket(KType::MIN60, sched.trading_minute(hm(10, 30))), 1);
  CHECK_EQ(sched.bucket(KType::MIN60, sched.trading_minute(hm(13, 0))), 2);
}

TEST_CASE("a period that does not divide a session ends with a short bar") {
  // A market with a 150-minute morning: the hour bars are 10:30, 11:30 and a 30-minute 12:00.
  TradingSchedule sched({{hm(9, 30), hm(12, 0)}, {hm(13, 0), hm(16, 0)}}, hm(9, 30), 0);
  CHECK(labels(sched, KType::MIN60) == (std::vector<std::string>{"10:30", "11:30", "12:00", "14:00", "15:00", "16:00"}));
  CHECK_THROWS(TradingSchedule({{hm(13, 0), hm(12, 0)}}, hm(9, 0), 0));
}

TEST_CASE("period labels: week by its Friday, others by the last calendar day") {
  const DayNumber wed = days_from_civil(2026, 11, 18);
  CHECK_EQ(period_label(KType::WEEK, wed), days_from_civil(2026, 11, 20));
  CHECK_EQ(period_label(KType::WEEK, days_from_civil(2026, 11, 16)), days_from_civil(2026, 11, 20));
  CHECK_EQ(period_start(KType::WEEK, wed), days_from_civil(2026, 11, 16));
  CHECK_EQ(period_label(KType::MONTH, days_from_civil(2024, 2, 5)), days_from_civil(2024, 2, 29));
  CHECK_EQ(period_label(KType::QUARTER, days_from_civil(2026, 8, 3)), days_from_civil(2026, 9, 30));
  CHECK_EQ(period_start(KType::QUARTER, days_from_civil(2026, 8, 3)), days_from_civil(2026, 7, 1));
  CHECK_EQ(period_label(KType::HALFYEAR, days_from_civil(2026, 3, 3)), days_from_civil(2026, 6, 30));
  CHECK_EQ(period_label(KType::HALFYEAR, days_from_civil(2026, 7, 1)), days_from_civil(2026, 12, 31));
  CHECK_EQ(period_label(KType::YEAR, days_from_civil(2026, 7, 1)), days_from_civil(2026, 12, 31));
  CHECK_EQ(period_start(KType::YEAR, days_from_civil(2026, 7, 1)), days_from_civil(2026, 1, 1));
}

TEST_MAIN()
