// Calendar arithmetic on exchange-local wall-clock time.
//
// Every timestamp inside the engine is a *naive local* instant: milliseconds since
// 1970-01-01 00:00 in the exchange's own wall clock (China Standard Time for SH/SZ/BJ).
// Trading rules are stated in local time (09:30, 11:30, "the week's Friday"), so keeping
// the engine in local time makes each rule a plain integer comparison and keeps the
// machine's time zone and wall clock out of the result entirely.  Conversion to true UTC
// epoch time happens only at the wire boundary, with the market's fixed UTC offset.
#pragma once

#include <cstdint>
#include <string>

namespace hkrt {

using TimestampMs = int64_t;  // naive exchange-local milliseconds since 1970-01-01 00:00
using DayNumber = int64_t;    // days since 1970-01-01 (local)

constexpr int64_t kMsPerSecond = 1000;
constexpr int64_t kMsPerMinute = 60 * kMsPerSecond;
constexpr int64_t kMsPerHour = 60 * kMsPerMinute;
constexpr int64_t kMsPerDay = 24 * kMsPerHour;

// China has kept UTC+8 without daylight saving since 1991.
constexpr int64_t kChinaUtcOffsetMs = 8 * kMsPerHour;

// UTC epoch ms a message's market time may carry, inclusive: outside 1990-01-01 ..
// 2200-01-01 UTC it is a broken clock or corruption, not a market (and could overflow the
// local-time conversion downstream).
constexpr int64_t kSaneMarketTimeMsFirst = 631'152'000'000;
constexpr int64_t kSaneMarketTimeMsLast = 7'258'118'400'000;

struct CivilDate {
  int32_t year;
  uint32_t month;  // 1..12
  uint32_t day;    // 1..31
};

inline int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

DayNumber days_from_civil(int32_t year, uint32_t month, uint32_t day);
CivilDate civil_from_days(DayNumber day);
bool is_valid_civil(int32_t year, uint32_t month, uint32_t day);

inline DayNumber day_of(TimestampMs t) { return floor_div(t, kMsPerDay); }
inline int64_t ms_of_day(TimestampMs t) { return t - day_of(t) * kMsPerDay; }
inline TimestampMs start_of_day(DayNumber d) { return d * kMsPerDay; }

// 0 = Monday ... 6 = Sunday.  1970-01-01 was a Thursday.
inline int weekday(DayNumber d) { return static_cast<int>(((d % 7) + 7 + 3) % 7); }

uint32_t days_in_month(int32_t year, uint32_t month);

TimestampMs make_timestamp(int32_t year, uint32_t month, uint32_t day, uint32_t hour = 0,
                           uint32_t minute = 0, uint32_t second = 0, uint32_t millisecond = 0);

// "YYYY-MM-DD HH:MM:SS[.mmm]" (milliseconds shown only when non-zero).
std::string format_timestamp(TimestampMs t);

// Parses "YYYY-MM-DD", "YYYY-MM-DD HH:MM[:SS[.fff]]" (also with 'T') or "YYYYMMDDHHMMSS".
// Returns false on anything else, including impossible dates.
bool parse_timestamp(const std::string& text, TimestampMs* out);

}  // namespace hkrt
