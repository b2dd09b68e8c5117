#include "convert.h"

#include <cstddef>

#include <datetime.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "kdata/time.h"

namespace hkrt::bindings {

void init_datetime_api() {
  if (!PyDateTimeAPI) PyDateTime_IMPORT;
  if (!PyDateTimeAPI) throw py::error_already_set();
}

namespace {
py::object& china_tz() {
  // Leaked on purpose: a static py::object must not be destroyed after the interpreter.
  static py::object* tz = new py::object(py::module_::import("datetime").attr("timezone")(
      py::module_::import("datetime").attr("timedelta")(py::arg("milliseconds") = kChinaUtcOffsetMs)));
  return *tz;
}
}  // namespace

TimestampMs to_timestamp(py::handle obj) {
  init_datetime_api();
  if (PyDateTime_Check(obj.ptr())) {
    py::object dt = py::reinterpret_borrow<py::object>(obj);
    if (PyDateTime_DATE_GET_TZINFO(obj.ptr()) != Py_None && !dt.attr("utcoffset")().is_none()) {
      dt = dt.attr("astimezone")(china_tz());
    }
    PyObject* p = dt.ptr();
    return make_timestamp(PyDateTime_GET_YEAR(p), PyDateTime_GET_MONTH(p), PyDateTime_GET_DAY(p),
                          PyDateTime_DATE_GET_HOUR(p), PyDateTime_DATE_GET_MINUTE(p), PyDateTime_DATE_GET_SECOND(p),
                          0) +
           PyDateTime_DATE_GET_MICROSECOND(p) / 1000;
  }
  if (PyDate_Check(obj.ptr())) {
    PyObject* p = obj.ptr();
    return make_timestamp(PyDateTime_GET_YEAR(p), PyDateTime_GET_MONTH(p), PyDateTime_GET_DAY(p));
  }
  if (py::isinstance<py::str>(obj)) {
    const std::string text = obj.cast<std::string>();
    TimestampMs t = 0;
    if (!parse_timestamp(text, &t))
      throw py::value_error("invalid datetime '" + text + "': expected 'YYYY-MM-DD HH:MM:SS[.fff]' (China local time)");
    return t;
  }
  py::module_ np = py::module_::import("numpy");
  if (py::isinstance(obj, np.attr("datetime64"))) {
    return np.attr("datetime64")(obj, "ms").attr("astype")("int64").cast<int64_t>();
  }
  throw py::type_error("expected a datetime, date, numpy.datetime64 or ISO string, got " +
                       std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
}

py::object to_datetime(TimestampMs t) {
  init_datetime_api();
  const CivilDate c = civil_from_days(day_of(t));
  const int64_t ms = ms_of_day(t);
  PyObject* dt = PyDateTime_FromDateAndTime(c.year, static_cast<int>(c.month), static_cast<int>(c.day),
                                            static_cast<int>(ms / kMsPerHour), static_cast<int>(ms / kMsPerMinute % 60),
                                            static_cast<int>(ms / kMsPerSecond % 60), static_cast<int>(ms % 1000) * 1000);
  if (!dt) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(dt);
}

DayNumber to_day(py::handle obj) { return day_of(to_timestamp(obj)); }

py::object to_date(DayNumber d) {
  init_datetime_api();
  const CivilDate c = civil_from_days(d);
  PyObject* date = PyDate_FromDate(c.year, static_cast<int>(c.month), static_cast<int>(c.day));
  if (!date) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(date);
}

Symbol to_symbol(py::handle obj) {
  if (!py::isinstance<py::str>(obj))
    throw py::type_error("a symbol is a string such as 'SH600000', 'sh600000' or '600000.SH'");
  try {
    return parse_symbol_or_throw(obj.cast<std::string>());
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

KType to_ktype(py::handle obj) {
  if (!py::isinstance<py::str>(obj)) throw py::type_error("a ktype is a KType member or its name, e.g. 'MIN5'");
  try {
    return parse_ktype_or_throw(obj.cast<std::string>());
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

py::dtype bar_dtype() {
  static py::object* dt = [] {
    py::list names, formats, offsets;
    auto field = [&](const char* name, const char* format, size_t offset) {
      names.append(name);
      formats.append(format);
      offsets.append(offset);
    };
    field("datetime", "M8[ms]", offsetof(Bar, datetime));
    field("open", "<f8", offsetof(Bar, open));
    field("high", "<f8", offsetof(Bar, high));
    field("low", "<f8", offsetof(Bar, low));
    field("close", "<f8", offsetof(Bar, close));
    field("volume", "<f8", offsetof(Bar, volume));
    field("amount", "<f8", offsetof(Bar, amount));
    field("filled", "?", offsetof(Bar, filled));
    return new py::object(py::dtype(names, formats, offsets, sizeof(Bar)));
  }();
  return py::reinterpret_borrow<py::dtype>(*dt);
}

py::array bars_to_array(const std::vector<Bar>& bars) {
  py::array out(bar_dtype(), std::vector<py::ssize_t>{static_cast<py::ssize_t>(bars.size())});
  if (!bars.empty()) std::memcpy(out.mutable_data(), bars.data(), bars.size() * sizeof(Bar));
  return out;
}

}  // namespace hkrt::bindings
