#include "check.h"
#include "kdata/time.h"

using namespace hkrt;

TEST_CASE("civil dates round-trip across eras and leap days") {
  CHECK_EQ(days_from_civil(1970, 1, 1), 0);
  CHECK_EQ(days_from_civil(2000, 3, 1), 11017);
  CHECK_EQ(days_from_civil(1969, 12, 31), -1);
  for (DayNumber d = -800000; d < 800000; d += 37) {
    const CivilDate c = civil_from_days(d);
    CHECK_EQ(days_from_civil(c.year, c.month, c.day), d);
  }
  const CivilDate leap = civil_from_days(days_from_civil(2024, 2, 29));
  CHECK_EQ(leap.month, 2u);
  CHECK_EQ(leap.day, 29u);
}

TEST_CASE("weekday: 2026-11-20 is a Friday, 2026-11-21 a Saturday") {
  CHECK_EQ(weekday(days_from_civil(2026, 11, 20)), 4);
  CHECK_EQ(weekday(days_from_civil(2026, 11, 21)), 5);
  CHECK_EQ(weekday(days_from_civil(1970, 1, 1)), 3);
  CHECK_EQ(weekday(days_from_civil(1969, 12, 29)), 0);
}

TEST_CASE("format and parse timestamps") {
  const TimestampMs t = make_timestamp(2026, 11, 20, 9, 30, 5, 250);
  CHECK_EQ(format_timestamp(t), std::string("2026-11-20 09:30:05.250"));
  CHECK_EQ(format_timestamp(make_timestamp(2026, 1, 2)), std::string("2026-01-02 00:00:00"));
  TimestampMs p = 0;
  CHECK(parse_timestamp("2026-11-20 09:30:05.25", &p));
  CHECK_EQ(p, t);
  CHECK(parse_timestamp("2026-11-20T09:30:05.250", &p));
  CHECK_EQ(p, t);
  CHECK(parse_timestamp("20261120093005", &p));
  CHECK_EQ(p, make_timestamp(2026, 11, 20, 9, 30, 5));
  CHECK(parse_timestamp("2026-11-20", &p));
  CHECK_EQ(p, make_timestamp(2026, 11, 20));
  CHECK(!parse_timestamp("2026-02-30 09:30:00", &p));
  CHECK(!parse_timestamp("2026-11-20 25:00:00", &p));
  CHECK(!parse_timestamp("yesterday", &p));
  CHECK(!parse_timestamp("2026-11-20 09:30:05.", &p));
}

TEST_CASE("day_of and ms_of_day floor for times before 1970") {
  const TimestampMs t = make_timestamp(1969, 12, 31, 23, 0);
  CHECK_EQ(day_of(t), -1);
  CHECK_EQ(ms_of_day(t), 23 * kMsPerHour);
}

TEST_CASE("the China offset and the market times the core believes") {
  CHECK_EQ(kChinaUtcOffsetMs, 8 * kMsPerHour);
  // The bounds are midnight UTC of 1990-01-01 and 2200-01-01 (epoch ms, not local time).
  CHECK_EQ(kSaneMarketTimeMsFirst, days_from_civil(1990, 1, 1) * kMsPerDay);
  CHECK_EQ(kSaneMarketTimeMsLast, days_from_civil(2200, 1, 1) * kMsPerDay);
  CHECK_EQ(format_timestamp(kSaneMarketTimeMsFirst + kChinaUtcOffsetMs), std::string("1990-01-01 08:00:00"));
}

TEST_MAIN()
