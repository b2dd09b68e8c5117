// hkrt.Spot: the core Spot struct with Python-typed fields.
#include <pybind11/stl.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>

#include "convert.h"
#include "kdata/spot.h"
#include "spot_agent/wire.h"

namespace hkrt::bindings {

namespace {
using Levels = std::array<double, kBookLevels>;

Levels to_levels(py::handle seq, const char* field) {
  Levels out{};
  if (seq.is_none()) return out;
  py::sequence s = py::reinterpret_borrow<py::sequence>(seq);
  if (py::len(s) > kBookLevels)
    throw py::value_error(std::string(field) + " has more than " + std::to_string(kBookLevels) + " levels");
  for (size_t i = 0; i < py::len(s); ++i) out[i] = s[i].cast<double>();
  return out;
}

py::list from_levels(const Levels& levels) {
  py::list out;
  for (double v : levels) out.append(v);
  return out;
}

template <Levels Spot::*member>
void def_levels(py::class_<Spot>& cls, const char* name, const char* doc) {
  cls.def_property(
      name, [](const Spot& s) { return from_levels(s.*member); },
      [name](Spot& s, py::handle v) { s.*member = to_levels(v, name); }, doc);
}

bool same(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

double to_double(py::handle value, std::string_view field) {
  const double v = PyFloat_AsDouble(value.ptr());
  if (v == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    throw py::type_error("Spot." + std::string(field) + " must be a number, got " +
                         std::string(py::str(py::type::handle_of(value).attr("__name__"))));
  }
  return v;
}

Spot make_spot(const py::args& args, const py::kwargs& kwargs) {
  if (args.size() > 2) throw py::type_error("Spot() takes at most 2 positional arguments (symbol, datetime)");
  Spot s;
  py::handle symbol = args.size() > 0 ? args[0] : py::handle(Py_None);
  py::handle datetime = args.size() > 1 ? args[1] : py::handle(Py_None);
  py::handle market = Py_None, code = Py_None;
  for (auto item : kwargs) {
    Py_ssize_t size = 0;
    const char* text = PyUnicode_AsUTF8AndSize(item.first.ptr(), &size);
    if (!text) throw py::error_already_set();
    const std::string_view key(text, static_cast<size_t>(size));
    py::handle v = item.second;
    if (key == "open") s.open = to_double(v, key);
    else if (key == "high") s.high = to_double(v, key);
    else if (key == "low") s.low = to_double(v, key);
    else if (key == "close") s.close = to_double(v, key);
    else if (key == "volume") s.volume = to_double(v, key);
    else if (key == "amount") s.amount = to_double(v, key);
    else if (key == "yesterday_close") s.yesterday_close = to_double(v, key);
    else if (key == "name") s.name = v.cast<std::string>();
    else if (key == "bid") s.bid = to_levels(v, "bid");
    else if (key == "bid_volume") s.bid_volume = to_levels(v, "bid_volume");
    else if (key == "ask") s.ask = to_levels(v, "ask");
    else if (key == "ask_volume") s.ask_volume = to_levels(v, "ask_volume");
    else if (key == "market") market = v;
    else if (key == "code") code = v;
    else if (key == "symbol" && args.size() < 1) symbol = v;
    else if (key == "datetime" && args.size() < 2) datetime = v;
    else throw py::type_error("Spot() got an unexpected or repeated keyword argument '" + std::string(key) + "'");
  }
  if (!symbol.is_none()) {
    s.symbol = to_symbol(symbol);
  } else if (!market.is_none() && !code.is_none()) {
    auto parsed = parse_code(market.cast<std::string>(), code.cast<std::string>());
    if (!parsed)
      throw py::value_error("invalid market/code '" + market.cast<std::string>() + "'/'" + code.cast<std::string>() +
                            "': market is SH, SZ or BJ and code six digits");
    s.symbol = *parsed;
  } else {
    throw py::type_error("Spot needs a symbol ('SH600000') or market= and code=");
  }
  if (datetime.is_none()) throw py::type_error("Spot needs a datetime");
  s.datetime = to_timestamp(datetime);
  return s;
}
}  // namespace

py::dict shared_columns(std::shared_ptr<const wire::DecodedColumns> columns, bool writeable) {
  const wire::DecodedColumns& c = *columns;
  const auto n = static_cast<py::ssize_t>(c.size());
  // One owner for all the arrays: a heap copy of the shared pointer, freed with the last array.
  auto* owner = new std::shared_ptr<const wire::DecodedColumns>(std::move(columns));
  py::capsule base(owner, [](void* p) { delete static_cast<std::shared_ptr<const wire::DecodedColumns>*>(p); });
  auto view = [&](const py::dtype& dtype, const void* data) {
    py::array a(dtype, std::vector<py::ssize_t>{n}, std::vector<py::ssize_t>{8}, data, base);
    if (!writeable) a.attr("flags").attr("writeable") = false;
    return a;
  };
  py::array symbols(py::dtype("S8"), std::vector<py::ssize_t>{n});
  char* out = static_cast<char*>(symbols.mutable_data());
  for (size_t i = 0; i < c.size(); ++i) {
    const uint32_t key = c.symbol_keys[i];
    if (key == kInvalidSymbolKey || key >= kMarketCount * kCodesPerMarket) std::memset(out + i * 8, 0, 8);
    else Symbol::from_key(key).write(out + i * 8);
  }
  static py::object* f8 = new py::object(py::dtype("float64"));  // leaked on purpose (outlives the interpreter)
  static py::object* ms = new py::object(py::dtype("datetime64[ms]"));
  const auto& f = py::reinterpret_borrow<py::dtype>(*f8);
  py::dict d;
  d["symbol"] = symbols;
  d["datetime"] = view(py::reinterpret_borrow<py::dtype>(*ms), c.datetime.data());
  d["open"] = view(f, c.open.data());
  d["high"] = view(f, c.high.data());
  d["low"] = view(f, c.low.data());
  d["close"] = view(f, c.close.data());
  d["volume"] = view(f, c.volume.data());
  d["amount"] = view(f, c.amount.data());
  return d;
}

namespace {
// Spot objects in bulk (a decoded message's thousands): the C++ Spot is placed in the same
// allocation as its Python object, right after pybind11's instance header, so one Python
// object costs one small-object allocation instead of three (object, Spot, registry node) and
// is never entered in pybind11's instance registry (nothing in C++ points at it, so no cast
// can need to find it).  pybind11's own dealloc would `delete` the value, so Spot's dealloc
// hook runs the destructor in place for these objects and hands every other one on.  The
// layout conditions are checked once; when they do not hold, objects are made by py::cast.
struct InlineSpots {
  PyTypeObject* type = nullptr;
  size_t offset = 0;  // of the Spot within the allocation
  size_t size = 0;    // of the allocation
  void (*base_dealloc)(py::detail::value_and_holder&) = nullptr;
};
InlineSpots inline_spots;
int inline_marker;  // its address in the holder slot (unused by a holder-less value) tags an inline Spot

bool is_inline(const py::detail::value_and_holder& v_h) {
  const auto* inst = v_h.inst;
  return inst->simple_layout && !inst->simple_holder_constructed && inst->simple_value_holder[1] == &inline_marker &&
         inst->simple_value_holder[0] == reinterpret_cast<const char*>(inst) + inline_spots.offset;
}

void spot_dealloc(py::detail::value_and_holder& v_h) {
  if (is_inline(v_h)) {
    v_h.value_ptr<Spot>()->~Spot();
    v_h.value_ptr() = nullptr;
    return;
  }
  inline_spots.base_dealloc(v_h);
}

void enable_inline_spots(py::handle cls) {
  auto* tinfo = py::detail::get_type_info(typeid(Spot));
  auto* type = reinterpret_cast<PyTypeObject*>(cls.ptr());
  if (tinfo == nullptr || tinfo->type != type || type->tp_itemsize != 0 || PyType_HasFeature(type, Py_TPFLAGS_HAVE_GC) ||
      tinfo->holder_size_in_ptrs > py::detail::instance_simple_holder_in_ptrs() || !tinfo->simple_ancestors ||
      type->tp_alloc != PyType_GenericAlloc)
    return;
  inline_spots.type = type;
  inline_spots.offset = (static_cast<size_t>(type->tp_basicsize) + alignof(Spot) - 1) / alignof(Spot) * alignof(Spot);
  inline_spots.size = inline_spots.offset + sizeof(Spot);
  inline_spots.base_dealloc = tinfo->dealloc;
  tinfo->dealloc = &spot_dealloc;
}

// A new Python Spot (one reference) whose Spot `make(storage)` constructs in place, or null
// with a Python error set.
template <typename Make>
PyObject* new_inline_spot(Make make) {
  void* memory = PyObject_Malloc(inline_spots.size);
  if (memory == nullptr) return PyErr_NoMemory();
  std::memset(memory, 0, inline_spots.offset);  // as PyType_GenericAlloc: a zeroed header
  PyObject* self = PyObject_Init(static_cast<PyObject*>(memory), inline_spots.type);
  auto* inst = reinterpret_cast<py::detail::instance*>(self);
  char* storage = static_cast<char*>(memory) + inline_spots.offset;
  make(storage);
  inst->simple_layout = true;
  inst->owned = true;  // so that pybind11's dealloc calls the type's dealloc (spot_dealloc)
  inst->simple_value_holder[0] = storage;
  inst->simple_value_holder[1] = &inline_marker;
  return self;
}
}  // namespace

py::list spot_objects(const wire::DecodedColumns& c) {
  size_t valid = 0;
  for (uint32_t key : c.symbol_keys) valid += key != kInvalidSymbolKey;
  py::list out(static_cast<py::ssize_t>(valid));
  py::ssize_t j = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    if (c.symbol_keys[i] == kInvalidSymbolKey) continue;
    PyObject* item = nullptr;
    if (inline_spots.type != nullptr) {
      item = new_inline_spot([&](void* storage) { new (storage) Spot(c.spot(i)); });
      if (item == nullptr) throw py::error_already_set();
    } else {
      // Built in place and handed over: no intermediate Spot to move from.
      item = py::cast(new Spot(c.spot(i)), py::return_value_policy::take_ownership).release().ptr();
    }
    PyList_SET_ITEM(out.ptr(), j++, item);
  }
  return out;
}

std::vector<py::object> blank_spot_objects(size_t n, std::vector<Spot*>* storage) {
  std::vector<py::object> out;
  storage->clear();
  if (inline_spots.type == nullptr) return out;
  out.reserve(n);
  storage->reserve(n);
  for (size_t i = 0; i < n; ++i) {
    PyObject* item = new_inline_spot([&](void* at) { storage->push_back(new (at) Spot()); });
    if (item == nullptr) throw py::error_already_set();
    out.push_back(py::reinterpret_steal<py::object>(item));
  }
  return out;
}

bool spot_objects_in_place() { return inline_spots.type != nullptr; }

void bind_spot(py::module_& m) {
  py::class_<Spot> cls(m, "Spot", R"doc(
A quote snapshot of one security.

Units are fixed everywhere: prices in yuan, ``volume`` in shares and ``amount`` in yuan,
both cumulative for the trading day; book volumes in shares. ``datetime`` is naive China
local time. The symbol is given as ``symbol`` ("SH600000", "sh600000" or "600000.SH")
or as ``market`` + ``code``, and is normalised to "SH600000".
)doc");
  // Keywords are parsed by hand: pybind11's generic keyword matching costs ~3 us for a
  // full Spot, four times the rest of the construction, and fetchers build millions.
  cls.def(py::init([](const py::args& args, const py::kwargs& kwargs) { return make_spot(args, kwargs); }));

  cls.def_property(
      "symbol", [](const Spot& s) { return s.symbol.str(); }, [](Spot& s, py::handle v) { s.symbol = to_symbol(v); },
      "Normalised symbol, e.g. 'SH600000'.");
  cls.def_property(
      "market", [](const Spot& s) { return std::string(market_name(s.symbol.market)); },
      [](Spot& s, const std::string& v) {
        auto m = parse_market(v);
        if (!m) throw py::value_error("invalid market '" + v + "': expected SH, SZ or BJ");
        s.symbol.market = *m;
      },
      "'SH', 'SZ' or 'BJ'.");
  cls.def_property(
      "code", [](const Spot& s) { return s.symbol.code_str(); },
      [](Spot& s, const std::string& v) {
        auto parsed = parse_code(market_name(s.symbol.market), v);
        if (!parsed) throw py::value_error("invalid code '" + v + "': expected six digits");
        s.symbol = *parsed;
      },
      "Six-digit code, e.g. '600000'.");
  cls.def_readwrite("name", &Spot::name);
  cls.def_property(
      "datetime", [](const Spot& s) { return to_datetime(s.datetime); },
      [](Spot& s, py::handle v) { s.datetime = to_timestamp(v); }, "Naive China local time.");
  cls.def_readwrite("yesterday_close", &Spot::yesterday_close);
  cls.def_readwrite("open", &Spot::open, "The day's open.");
  cls.def_readwrite("high", &Spot::high, "The day's high so far.");
  cls.def_readwrite("low", &Spot::low, "The day's low so far.");
  cls.def_readwrite("close", &Spot::close, "Last price.");
  cls.def_readwrite("amount", &Spot::amount, "Cumulative turnover of the day, yuan.");
  cls.def_readwrite("volume", &Spot::volume, "Cumulative volume of the day, shares.");
  def_levels<&Spot::bid>(cls, "bid", "Bid prices, levels 1-5.");
  def_levels<&Spot::bid_volume>(cls, "bid_volume", "Bid volumes in shares, levels 1-5.");
  def_levels<&Spot::ask>(cls, "ask", "Ask prices, levels 1-5.");
  def_levels<&Spot::ask_volume>(cls, "ask_volume", "Ask volumes in shares, levels 1-5.");

  cls.def("__repr__", [](const Spot& s) {
    return "Spot(symbol='" + s.symbol.str() + "', datetime='" + format_timestamp(s.datetime) +
           "', close=" + py::repr(py::float_(s.close)).cast<std::string>() +
           ", volume=" + py::repr(py::float_(s.volume)).cast<std::string>() +
           ", amount=" + py::repr(py::float_(s.amount)).cast<std::string>() + ")";
  });
  cls.def("__eq__", [](const Spot& a, py::handle other) {
    if (!py::isinstance<Spot>(other)) return false;
    const Spot& b = other.cast<const Spot&>();
    bool eq = a.symbol == b.symbol && a.name == b.name && a.datetime == b.datetime &&
              same(a.yesterday_close, b.yesterday_close) && same(a.open, b.open) && same(a.high, b.high) &&
              same(a.low, b.low) && same(a.close, b.close) && same(a.amount, b.amount) && same(a.volume, b.volume);
    for (int i = 0; i < kBookLevels; ++i)
      eq = eq && same(a.bid[i], b.bid[i]) && same(a.bid_volume[i], b.bid_volume[i]) && same(a.ask[i], b.ask[i]) &&
           same(a.ask_volume[i], b.ask_volume[i]);
    return eq;
  });
  cls.attr("__hash__") = py::none();
  cls.def(py::pickle(
      [](const Spot& s) {
        return py::make_tuple(s.symbol.key(), s.name, s.datetime,
                              py::make_tuple(s.yesterday_close, s.open, s.high, s.low, s.close, s.amount, s.volume),
                              s.bid, s.bid_volume, s.ask, s.ask_volume);
      },
      [](const py::tuple& t) {
        Spot s;
        s.symbol = Symbol::from_key(t[0].cast<uint32_t>());
        s.name = t[1].cast<std::string>();
        s.datetime = t[2].cast<int64_t>();
        auto v = t[3].cast<py::tuple>();
        s.yesterday_close = v[0].cast<double>();
        s.open = v[1].cast<double>();
        s.high = v[2].cast<double>();
        s.low = v[3].cast<double>();
        s.close = v[4].cast<double>();
        s.amount = v[5].cast<double>();
        s.volume = v[6].cast<double>();
        s.bid = t[4].cast<Levels>();
        s.bid_volume = t[5].cast<Levels>();
        s.ask = t[6].cast<Levels>();
        s.ask_volume = t[7].cast<Levels>();
        return s;
      }));
  enable_inline_spots(cls);
}

}  // namespace hkrt::bindings
