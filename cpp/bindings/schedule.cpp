// Market-time rules for Python: the UTC offset, the A-share trading schedule, the period
// registry and multi-day period boundaries.  Python reads these instead of restating them,
// so a rule changed here changes everywhere (python/hkrt/china_time.py, hkrt.ktype).
#include <pybind11/stl.h>

#include "convert.h"
#include "kdata/calendar.h"
#include "kdata/schedule.h"

namespace hkrt::bindings {

namespace {

TradingCalendar calendar_from(const py::iterable& holidays, const py::object& coverage) {
  std::vector<DayNumber> days;
  for (py::handle h : holidays) days.push_back(to_day(h));
  TradingCalendar calendar(std::move(days));
  if (!coverage.is_none()) {
    auto range = coverage.cast<py::tuple>();
    if (range.size() != 2) throw py::value_error("coverage must be (first_day, last_day)");
    calendar.set_coverage(to_day(range[0]), to_day(range[1]));
  }
  return calendar;
}

KType multi_day_or_throw(py::handle k) {
  KType kind = to_ktype(k);
  if (is_intraday(kind)) throw py::value_error(std::string("period boundaries are for DAY and longer, not ") + ktype_name(kind));
  return kind;
}

}  // namespace

void bind_schedule(py::module_& m) {
  m.attr("CHINA_UTC_OFFSET_MS") = kChinaUtcOffsetMs;

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

  m.def(
      "period_start", [](py::handle k, py::handle day) { return to_date(period_start(multi_day_or_throw(k), to_day(day))); },
      py::arg("ktype"), py::arg("day"),
      "First calendar day of the DAY..YEAR period containing the day (Monday for WEEK).");
  m.def(
      "period_end", [](py::handle k, py::handle day) { return to_date(period_end(multi_day_or_throw(k), to_day(day))); },
      py::arg("ktype"), py::arg("day"), "Last calendar day of the DAY..YEAR period containing the day (Sunday for WEEK).");
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
