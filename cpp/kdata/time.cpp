#include "time.h"

#include <cctype>
#include <cstdio>

namespace hkrt {

// Days-from-civil on the proleptic Gregorian calendar, computed in 400-year eras
// (each era is exactly 146097 days) with March as the first month so that the leap
// day falls at the end of the computational year.
DayNumber days_from_civil(int32_t year, uint32_t month, uint32_t day) {
  const int64_t y = static_cast<int64_t>(year) - (month <= 2 ? 1 : 0);
  const int64_t era = floor_div(y, 400);
  const int64_t year_of_era = y - era * 400;                                   // [0, 399]
  const int64_t month_from_march = (month + 9) % 12;                           // Mar=0 .. Feb=11
  const int64_t day_of_year = (153 * month_from_march + 2) / 5 + day - 1;     // [0, 365]
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;  // 719468 = days from 0000-03-01 to 1970-01-01
}

CivilDate civil_from_days(DayNumber d) {
  const int64_t z = d + 719468;
  const int64_t era = floor_div(z, 146097);
  const int64_t day_of_era = z - era * 146097;                                             // [0, 146096]
  const int64_t year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t month_from_march = (5 * day_of_year + 2) / 153;
  const uint32_t day = static_cast<uint32_t>(day_of_year - (153 * month_from_march + 2) / 5 + 1);
  const uint32_t month = static_cast<uint32_t>(month_from_march < 10 ? month_from_march + 3 : month_from_march - 9);
  const int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
  return CivilDate{static_cast<int32_t>(year), month, day};
}

uint32_t days_in_month(int32_t year, uint32_t month) {
  static const uint32_t kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2) {
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return leap ? 29 : 28;
  }
  return kDays[month - 1];
}

bool is_valid_civil(int32_t year, uint32_t month, uint32_t day) {
  return year >= 1 && year <= 9999 && month >= 1 && month <= 12 && day >= 1 && day <= days_in_month(year, month);
}

TimestampMs make_timestamp(int32_t year, uint32_t month, uint32_t day, uint32_t hour, uint32_t minute,
                           uint32_t second, uint32_t millisecond) {
  return start_of_day(days_from_civil(year, month, day)) + hour * kMsPerHour + minute * kMsPerMinute +
         second * kMsPerSecond + millisecond;
}

std::string format_timestamp(TimestampMs t) {
  const CivilDate c = civil_from_days(day_of(t));
  const int64_t ms = ms_of_day(t);
  char buf[40];
  const int h = static_cast<int>(ms / kMsPerHour), m = static_cast<int>(ms / kMsPerMinute % 60),
            s = static_cast<int>(ms / kMsPerSecond % 60), f = static_cast<int>(ms % 1000);
  if (f != 0) {
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02d:%02d:%02d.%03d", c.year, c.month, c.day, h, m, s, f);
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02d:%02d:%02d", c.year, c.month, c.day, h, m, s);
  }
  return buf;
}

namespace {
bool read_digits(const std::string& s, size_t pos, size_t n, uint32_t* out) {
  if (pos + n > s.size()) return false;
  uint32_t v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + static_cast<uint32_t>(s[i] - '0');
  }
  *out = v;
  return true;
}
}  // namespace

bool parse_timestamp(const std::string& s, TimestampMs* out) {
  uint32_t y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, ms = 0;
  size_t pos = 0;
  if (s.size() == 14 && read_digits(s, 0, 14, &y)) {  // YYYYMMDDHHMMSS (QQ style)
    read_digits(s, 0, 4, &y);
    read_digits(s, 4, 2, &mo);
    read_digits(s, 6, 2, &d);
    read_digits(s, 8, 2, &h);
    read_digits(s, 10, 2, &mi);
    read_digits(s, 12, 2, &sec);
  } else {
    if (!read_digits(s, 0, 4, &y) || s.size() < 10 || s[4] != '-' || !read_digits(s, 5, 2, &mo) || s[7] != '-' ||
        !read_digits(s, 8, 2, &d))
      return false;
    pos = 10;
    if (pos < s.size()) {
      if (s[pos] != ' ' && s[pos] != 'T') return false;
      if (!read_digits(s, pos + 1, 2, &h) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
          !read_digits(s, pos + 4, 2, &mi))
        return false;
      pos += 6;
      if (pos < s.size()) {
        if (s[pos] != ':' || !read_digits(s, pos + 1, 2, &sec)) return false;
        pos += 3;
        if (pos < s.size()) {
          if (s[pos] != '.') return false;
          size_t digits = 0;
          uint32_t frac = 0;
          for (size_t i = pos + 1; i < s.size(); ++i, ++digits) {
            if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
            if (digits < 3) frac = frac * 10 + static_cast<uint32_t>(s[i] - '0');
          }
          if (digits == 0) return false;
          for (size_t k = digits; k < 3; ++k) frac *= 10;
          ms = frac;
        }
      }
    }
  }
  if (!is_valid_civil(static_cast<int32_t>(y), mo, d) || h > 23 || mi > 59 || sec > 59) return false;
  *out = make_timestamp(static_cast<int32_t>(y), mo, d, h, mi, sec, ms);
  return true;
}

}  // namespace hkrt
