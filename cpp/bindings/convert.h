// Conversions between Python objects and core types.  This is the only place that knows
// both sides; the core never sees Python and the Python package never sees raw layouts.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "kdata/bar.h"
#include "kdata/ktype.h"
#include "kdata/spot.h"
#include "kdata/symbol.h"
#include "kdata/time.h"

namespace hkrt::wire {
struct DecodedColumns;
}

namespace hkrt::bindings {

namespace py = pybind11;

void init_datetime_api();

// datetime.datetime (naive = China local time; aware = converted to China local time),
// datetime.date (midnight), pandas.Timestamp, numpy.datetime64 or an ISO string.
TimestampMs to_timestamp(py::handle obj);
py::object to_datetime(TimestampMs t);
DayNumber to_day(py::handle obj);  // a date, or the date of a datetime
py::object to_date(DayNumber d);

Symbol to_symbol(py::handle obj);  // ValueError naming the accepted spellings
KType to_ktype(py::handle obj);    // a KType member or its name in any case

// numpy structured dtype of Bar: datetime64[ms] + six float64 columns.
py::dtype bar_dtype();
py::array bars_to_array(const std::vector<Bar>& bars);

// A message's decoded spots for Python, decoded once and shared (cpp/bindings/spot.cpp):
// numpy columns that view the shared buffer without copying (each array keeps the buffer
// alive, and the agent core never writes into a buffer someone still holds; read-only unless
// `writeable`, for a buffer nobody else sees) --
// "symbol" (S8, b"" for an invalid market/code), "datetime" (datetime64[ms], China local),
// open/high/low/close/volume/amount (float64) -- and Spot objects of the rows with a valid
// symbol (needs columns decoded with details for the name, yesterday's close and the book).
py::dict shared_columns(std::shared_ptr<const wire::DecodedColumns> columns, bool writeable = false);
py::list spot_objects(const wire::DecodedColumns& columns);
// n new default Spot objects, each Spot inside its Python object at (*storage)[i], for a
// decoder to fill in place (nobody else sees them until they are returned).  Possible only
// when spot_objects_in_place(); otherwise nothing is made.
bool spot_objects_in_place();
std::vector<py::object> blank_spot_objects(size_t n, std::vector<Spot*>* storage);

}  // namespace hkrt::bindings
