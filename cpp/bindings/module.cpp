// The extension module hkrt._hkrt.  Each bind_* lives beside the types it converts.
#include <pybind11/stl.h>

#include "convert.h"
#include "kdata/engine.h"

namespace hkrt::bindings {
void bind_spot(py::module_& m);
void bind_engine(py::module_& m);
void bind_wire(py::module_& m);
void bind_broker(py::module_& m);
void bind_calendar(py::module_& m);
void bind_schedule(py::module_& m);
}  // namespace hkrt::bindings

PYBIND11_MODULE(_hkrt, m) {
  namespace py = pybind11;
  using namespace hkrt;
  using namespace hkrt::bindings;
  m.doc() = "hkrt C++ core: spots and the K-line engine";
  init_datetime_api();
  bind_spot(m);
  bind_engine(m);
  bind_wire(m);
  bind_broker(m);
  bind_calendar(m);  // before bind_schedule: period_label takes a TradingCalendar
  bind_schedule(m);

  m.def(
      "normalize_symbol", [](py::handle s) { return to_symbol(s).str(); }, py::arg("symbol"),
      "'sh600000' or '600000.SH' -> 'SH600000'; ValueError for anything else.");
  m.def(
      "canonical_ktype", [](py::handle k) { return std::string(ktype_name(to_ktype(k))); }, py::arg("name"),
      "'min5' -> 'MIN5'; ValueError listing the valid names for anything else.");
  std::vector<std::string> ktypes, reasons;
  for (KType k : kAllKTypes) ktypes.push_back(ktype_name(k));
  for (int i = 0; i < kRejectReasonCount; ++i) reasons.push_back(reject_reason_name(static_cast<RejectReason>(i)));
  m.attr("KTYPE_NAMES") = ktypes;
  m.attr("REJECT_REASONS") = reasons;
  m.attr("BAR_DTYPE") = bar_dtype();
}
