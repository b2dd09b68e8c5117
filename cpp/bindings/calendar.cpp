// hkrt._hkrt.TradingCalendar: the C++ trading calendar, which python/hkrt/calendar.py wraps.
// Python keeps the holiday files, exchange_calendars overlays and coverage errors; every
// answer about a day (is it a trading day, which trading day comes next or before, the
// trading days between two days) comes from cpp/kdata/calendar.cpp, the one the engine uses.
#include "calendar.h"

#include <pybind11/stl.h>

namespace hkrt::bindings {

TradingCalendar calendar_from(const py::iterable& holidays, const py::object& coverage) {
  std::vector<DayNumber> days;
  for (py::handle h : holidays) days.push_back(to_day(h));
  TradingCalendar calendar(std::move(days));
  if (!coverage.is_none()) {
    auto range = coverage.cast<py::tuple>();
    if (range.size() != 2) throw py::value_error("coverage must be (first_day, last_day)");
    const DayNumber first = to_day(range[0]), last = to_day(range[1]);
    if (last < first) throw py::value_error("coverage must be (first_day, last_day) with first_day <= last_day");
    calendar.set_coverage(first, last);
  }
  return calendar;
}

namespace {

py::object date_or_none(std::optional<DayNumber> day) { return day ? to_date(*day) : py::none(); }

py::list dates(const std::vector<DayNumber>& days) {
  py::list out(days.size());
  for (size_t i = 0; i < days.size(); ++i) out[i] = to_date(days[i]);
  return out;
}

}  // namespace

void bind_calendar(py::module_& m) {
  py::class_<TradingCalendar> cls(
      m, "TradingCalendar",
      "Trading days: Monday to Friday minus the holidays, vouched for inside the coverage. The one "
      "implementation the engine uses; hkrt.TradingCalendar wraps it.");
  cls.def(py::init(&calendar_from), py::arg("holidays") = py::tuple(), py::arg("coverage") = py::none(),
          "Holidays are dates (or ISO strings); coverage = (first_day, last_day), None = unbounded.");
  cls.def_property_readonly(
      "holidays", [](const TradingCalendar& c) { return dates(c.holidays()); }, "The holidays, sorted and unique.");
  cls.def_property_readonly(
      "coverage",
      [](const TradingCalendar& c) -> py::object {
        if (!c.bounded()) return py::none();
        return py::make_tuple(to_date(c.coverage_first()), to_date(c.coverage_last()));
      },
      "(first_day, last_day) the holiday table is right for; None = unbounded.");
  cls.def(
      "covers", [](const TradingCalendar& c, py::handle day) { return c.covers(to_day(day)); }, py::arg("day"),
      "Whether the calendar vouches for the day.");
  cls.def(
      "is_holiday", [](const TradingCalendar& c, py::handle day) { return c.is_holiday(to_day(day)); },
      py::arg("day"), "Whether the day is one of the holidays (weekends are closed without being holidays).");
  cls.def(
      "is_trading_day", [](const TradingCalendar& c, py::handle day) { return c.is_trading_day(to_day(day)); },
      py::arg("day"), "A weekday that is not a holiday (answered for any day: check covers() first).");
  // The walks, each answering None where the calendar cannot vouch for the day it would name.
  struct WalkBinding {
    const char* name;
    std::optional<DayNumber> (TradingCalendar::*walk)(DayNumber) const;
    const char* doc;
  };
  const WalkBinding walks[] = {
      {"next_trading_day", &TradingCalendar::next_trading_day,
       "The first trading day after the day; None when the walk would leave the coverage."},
      {"previous_trading_day", &TradingCalendar::previous_trading_day,
       "The last trading day before the day; None when the walk would leave the coverage."},
      {"trading_day_on_or_before", &TradingCalendar::trading_day_on_or_before,
       "The day itself when it trades, else the last trading day before it; None outside the coverage."},
      {"trading_day_on_or_after", &TradingCalendar::trading_day_on_or_after,
       "The day itself when it trades, else the first trading day after it; None outside the coverage."},
  };
  for (const WalkBinding& w : walks) {
    cls.def(
        w.name, [walk = w.walk](const TradingCalendar& c, py::handle day) { return date_or_none((c.*walk)(to_day(day))); },
        py::arg("day"), w.doc);
  }
  cls.def(
      "trading_days",
      [](const TradingCalendar& c, py::handle first, py::handle last) {
        return dates(c.trading_days(to_day(first), to_day(last)));
      },
      py::arg("first"), py::arg("last"), "Trading days in [first, last] that the calendar covers, in order.");
  cls.def("__repr__", [](const TradingCalendar& c) {
    std::string span = "unbounded";
    if (c.bounded()) span = format_timestamp(start_of_day(c.coverage_first())).substr(0, 10) + " to " +
                            format_timestamp(start_of_day(c.coverage_last())).substr(0, 10);
    return "_hkrt.TradingCalendar(" + std::to_string(c.holidays().size()) + " holidays, " + span + ")";
  });
}

}  // namespace hkrt::bindings
