// Market-time rules for Python: the UTC offset, the A-share trading schedule, the period
// registry and multi-day period boundaries.  Python reads these instead of restating them,
// so a rule changed here changes everywhere (python/hkrt/china_time.py, hkrt.ktype).
#include <pybind11/stl.h>

#include "calendar.h"
#include "kdata/schedule.h"

namespace hkrt::bindings {

namespace {

KType multi_day_or_throw(py::handle k) {
  KType kind = to_ktype(k);
  if (is_intraday(kind)) throw py::value_error(std::string("period boundaries are for DAY and longer, not ") + ktype_name(kind));
  return kind;
}

}  // namespace

void bind_schedule(py::module_& m) {
  m.attr("CHINA_UTC_OFFSET_MS") = kChinaUtcOffsetMs;
  m.attr("SANE_MARKET_TIME_MS") = py::make_tuple(kSaneMarketTimeMsFirst, kSaneMarketTimeMsLast);  // inclusive

  // Times of day in ms since local midnight, as the engine uses them.
  const TradingSchedule schedule = TradingSchedule::china_a_share();
  py::list sessions;
  for (const Session& s : schedule.sessions()) sessions.append(py::make_tuple(s.open_ms, s.close_ms));
  py::dict a_share;
  a_share["sessions"] = py::tuple(sessions);
  a_share["auction_open_ms"] = schedule.auction_open_ms();
  a_share["grace_ms"] = schedule.grace_ms();
  a_share["close_cutoff_ms"] = schedule.close_cutoff_ms();
  a_share["minutes_per_day"] = schedule.minutes_per_day();
  m.attr("CHINA_A_SHARE_SCHEDULE") = a_share;

  // name -> minutes per bar (0 for DAY and longer), in the registry's order (shortest first).
  py::dict minutes;
  py::list multi_day;
  for (KType k : kAllKTypes) {
    minutes[py::str(ktype_name(k))] = intraday_minutes(k);
    if (is_multi_day(k)) multi_day.append(py::str(ktype_name(k)));
  }
  m.attr("KTYPE_INTRADAY_MINUTES") = minutes;
  m.attr("KTYPE_MULTI_DAY") = py::tuple(multi_day);  // WEEK and longer: span several trading days
  // name -> the `ktype` field of completed-bar records (the engine writes the enum's value).
  py::dict codes;
  for (KType k : kAllKTypes) codes[py::str(ktype_name(k))] = static_cast<int>(static_cast<uint8_t>(k));
  m.attr("KTYPE_RECORD_CODES") = codes;

  m.def(
      "bar_labels_ms",
      [schedule](py::handle k) {
        const KType kind = to_ktype(k);
        if (!is_intraday(kind)) throw py::value_error(std::string("bar labels are for intraday periods, not ") + ktype_name(kind));
        std::vector<int64_t> out;
        for (int b = 0; b < schedule.buckets_per_day(kind); ++b) out.push_back(schedule.bucket_label(kind, b));
        return out;
      },
      py::arg("ktype"), "Right labels of a day's bars of an intraday period, ms since local midnight (MIN: 09:31 .. 15:00).");
  m.def(
      "period_start", [](py::handle k, py::handle day) { return to_date(period_start(multi_day_or_throw(k), to_day(day))); },
      py::arg("ktype"), py::arg("day"),
      "First calendar day of the DAY..YEAR period containing the day (Monday for WEEK).");
  m.def(
      "period_end", [](py::handle k, py::handle day) { return to_date(period_end(multi_day_or_throw(k), to_day(day))); },
      py::arg("ktype"), py::arg("day"), "Last calendar day of the DAY..YEAR period containing the day (Sunday for WEEK).");
  m.def(
      "period_label",
      [](py::handle k, py::handle day, const TradingCalendar& calendar) {
        return to_date(period_label(multi_day_or_throw(k), to_day(day), calendar));
      },
      py::arg("ktype"), py::arg("day"), py::arg("calendar"),
      "Label of the DAY..YEAR bar holding a trading day: the period's last trading day on the calendar.");
  m.def(
      "period_label",
      [](py::handle k, py::handle day, const py::iterable& holidays, const py::object& coverage) {
        return to_date(period_label(multi_day_or_throw(k), to_day(day), calendar_from(holidays, coverage)));
      },
      py::arg("ktype"), py::arg("day"), py::arg("holidays") = py::tuple(), py::arg("coverage") = py::none(),
      "Label of the DAY..YEAR bar holding a trading day: the period's last trading day on the calendar "
      "given by holidays (weekends never trade) and coverage (first_day, last_day).");
}

}  // namespace hkrt::bindings
