// The trading calendar for Python: one C++ TradingCalendar built from Python's day set.
#pragma once

#include "convert.h"
#include "kdata/calendar.h"

namespace hkrt::bindings {

// A calendar from an iterable of holidays (dates or ISO strings) and an optional
// (first_day, last_day) coverage; None = unbounded.  ValueError for a malformed coverage.
TradingCalendar calendar_from(const py::iterable& holidays, const py::object& coverage);

}  // namespace hkrt::bindings
