// The spot wire codec (cpp/spot_agent/wire.h) for Python: type conversion only.  hkrt.wire
// (python/hkrt/wire.py) is the public face; these functions are private (_wire_*).
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "convert.h"
#include "spot_agent/wire.h"

namespace hkrt::bindings {

namespace {
using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;
using Int64Array = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

// A contiguous read-only view of any buffer-protocol object (bytes, bytearray, memoryview,
// numpy array, mmap), without copying.
class InputBuffer {
 public:
  explicit InputBuffer(py::handle obj) {
    if (PyObject_GetBuffer(obj.ptr(), &view_, PyBUF_SIMPLE) != 0) throw py::error_already_set();
  }
  ~InputBuffer() { PyBuffer_Release(&view_); }
  InputBuffer(const InputBuffer&) = delete;
  InputBuffer& operator=(const InputBuffer&) = delete;
  const uint8_t* data() const { return static_cast<const uint8_t*>(view_.buf); }
  size_t size() const { return static_cast<size_t>(view_.len); }

 private:
  Py_buffer view_{};
};

// Raises hkrt.wire.WireError(reason, detail).
[[noreturn]] void raise_wire_error(wire::DecodeError e, const InputBuffer& in) {
  static py::object* cls = new py::object(py::module_::import("hkrt.wire").attr("WireError"));  // leaked on purpose
  std::string detail;
  switch (e) {
    case wire::DecodeError::TooShort:
      detail = std::to_string(in.size()) + " bytes, shorter than the " + std::to_string(wire::kMinMessageSize) +
               "-byte minimum (root offset + file identifier)";
      break;
    case wire::DecodeError::BadIdentifier: {
      detail = "file identifier is " +
               py::repr(py::bytes(reinterpret_cast<const char*>(in.data()) + 4, 4)).cast<std::string>() +
               ", expected b'" + wire::kFileIdentifier + "'";
      break;
    }
    case wire::DecodeError::Malformed:
      detail = std::to_string(in.size()) +
               "-byte message failed FlatBuffers verification (truncated, corrupt, or a required field missing)";
      break;
    case wire::DecodeError::UnsupportedVersion:
      detail = "schema_version is not " + std::to_string(wire::kSchemaVersion) + ", the version this reader knows";
      break;
    case wire::DecodeError::TooLarge:
      detail = std::to_string(in.size()) + "-byte message is over the size cap";
      break;
    default:
      break;
  }
  py::object exc = (*cls)(wire::decode_error_name(e), detail);
  PyErr_SetObject(cls->ptr(), exc.ptr());
  throw py::error_already_set();
}

wire::Header to_header(const py::tuple& t) {
  if (t.size() != 12) throw py::value_error("header: expected 12 fields");
  wire::Header h;
  h.publisher_id = t[0].cast<uint64_t>();
  h.sequence = t[1].cast<uint64_t>();
  h.cycle_id = t[2].cast<uint64_t>();
  h.part_index = t[3].cast<uint32_t>();
  h.part_count = t[4].cast<uint32_t>();
  h.send_time_us = t[5].cast<int64_t>();
  h.market_time_ms = t[6].cast<int64_t>();
  h.session_epoch = t[7].cast<uint64_t>();
  h.heartbeat = t[8].cast<bool>();
  h.simulated_time = t[9].cast<bool>();
  h.day_end = t[10].cast<bool>();
  h.changes_only = t[11].cast<bool>();
  return h;
}

py::tuple from_header(const wire::Header& h) {
  return py::make_tuple(h.schema_version, h.publisher_id, h.sequence, h.cycle_id, h.part_index, h.part_count,
                        h.send_time_us, h.market_time_ms, h.session_epoch, h.heartbeat, h.simulated_time,
                        h.day_end, h.changes_only);
}

py::bytes to_bytes(const wire::ByteView& v) {
  return py::bytes(reinterpret_cast<const char*>(v.data), static_cast<py::ssize_t>(v.size));
}

void append_utf8(std::string* out, char32_t c) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

// A one-dimensional numpy array of bytes ('S'), str ('U') or objects (str, bytes, None) as
// UTF-8 string_views.  Views point into the array (kept alive by the caller) or `storage`.
// None and NaN objects are empty strings when allow_missing (names), a TypeError otherwise.
std::vector<std::string_view> string_views(const py::array& a, const char* column, bool allow_missing,
                                           std::string* storage) {
  if (a.ndim() != 1) throw py::value_error(std::string(column) + " must be one-dimensional");
  const size_t n = static_cast<size_t>(a.size());
  std::vector<std::string_view> out(n);
  const char kind = a.dtype().kind();
  const size_t width = static_cast<size_t>(a.itemsize());
  const auto stride = a.strides(0);
  const char* base = static_cast<const char*>(a.data());
  if (kind == 'S') {
    for (size_t i = 0; i < n; ++i) {
      const char* p = base + static_cast<py::ssize_t>(i) * stride;
      out[i] = std::string_view(p, strnlen(p, width));
    }
  } else if (kind == 'U') {
    std::vector<std::pair<size_t, size_t>> spans(n);
    storage->clear();
    storage->reserve(n * width / 4);
    for (size_t i = 0; i < n; ++i) {
      const auto* p = reinterpret_cast<const char32_t*>(base + static_cast<py::ssize_t>(i) * stride);
      const size_t start = storage->size();
      for (size_t k = 0; k < width / 4 && p[k] != 0; ++k) append_utf8(storage, p[k]);
      spans[i] = {start, storage->size() - start};
    }
    for (size_t i = 0; i < n; ++i) out[i] = std::string_view(storage->data() + spans[i].first, spans[i].second);
  } else if (kind == 'O') {
    for (size_t i = 0; i < n; ++i) {
      PyObject* item = *reinterpret_cast<PyObject* const*>(base + static_cast<py::ssize_t>(i) * stride);
      if (PyUnicode_Check(item)) {
        Py_ssize_t size = 0;
        const char* text = PyUnicode_AsUTF8AndSize(item, &size);
        if (!text) throw py::error_already_set();
        out[i] = std::string_view(text, static_cast<size_t>(size));
      } else if (PyBytes_Check(item)) {
        out[i] = std::string_view(PyBytes_AS_STRING(item), static_cast<size_t>(PyBytes_GET_SIZE(item)));
      } else if (allow_missing && (item == Py_None || (PyFloat_Check(item) && PyFloat_AS_DOUBLE(item) != PyFloat_AS_DOUBLE(item)))) {
        out[i] = std::string_view();
      } else {
        throw py::type_error(std::string(column) + "[" + std::to_string(i) + "] must be str or bytes, got " +
                             std::string(py::str(py::type::handle_of(py::handle(item)).attr("__name__"))));
      }
    }
  } else {
    throw py::type_error(std::string(column) + " must hold str or bytes, got dtype " + std::string(py::str(a.dtype())));
  }
  return out;
}

const double* column(const std::optional<DoubleArray>& a, size_t n, const char* name) {
  if (!a) return nullptr;
  if (a->ndim() != 1 || static_cast<size_t>(a->size()) != n)
    throw py::value_error(std::string(name) + " must be one-dimensional with one value per symbol");
  return a->data();
}

const double* book(const std::optional<DoubleArray>& a, size_t n, size_t levels, const char* name) {
  if (!a) return nullptr;
  if (a->ndim() != 2 || static_cast<size_t>(a->shape(0)) != n || static_cast<size_t>(a->shape(1)) != levels)
    throw py::value_error(std::string(name) + " must be an (n, levels) matrix, all book columns with the same levels");
  return a->data();
}

// A DataFrame's book column: a one-dimensional object array whose items are one row's levels
// (a float64 numpy array, a list or tuple of numbers, or None / NaN for no book), as an
// (n, levels) float64 matrix, ragged rows padded with 0.  Reads each item in place: a
// float64 array through numpy's own fields, a list through its items; anything else through
// numpy.asarray.
class BookRows {
 public:
  explicit BookRows(const char* column) : column_(column) {}

  // The row's levels (count, and a reader for level k).
  struct Row {
    const char* data = nullptr;  // float64 array data, stride below
    py::ssize_t stride = 0;
    PyObject* const* items = nullptr;  // list/tuple items
    size_t count = 0;
  };

  Row row(PyObject* item, size_t i) {
    Row r;
    auto& api = py::detail::npy_api::get();
    // An array first: PyFloat_Check on one walks its type's bases, a third of the time of a cell.
    if (api.PyArray_Check_(item)) {
      auto* a = py::detail::array_proxy(item);
      if (a->descr == float64_.ptr() && a->nd == 1) {
        r.data = a->data;
        r.stride = a->strides[0];
        r.count = static_cast<size_t>(a->dimensions[0]);
        return r;
      }
    } else if (item == Py_None || (PyFloat_Check(item) && PyFloat_AS_DOUBLE(item) != PyFloat_AS_DOUBLE(item))) {
      return r;
    } else if (PyList_Check(item) || PyTuple_Check(item)) {
      r.items = PySequence_Fast_ITEMS(item);
      r.count = static_cast<size_t>(PySequence_Fast_GET_SIZE(item));
      return r;
    }
    // anything else: numpy's conversion, kept alive until the matrix is built
    py::array_t<double, py::array::forcecast> converted;
    try {
      converted = py::array_t<double, py::array::forcecast>::ensure(py::handle(item));
    } catch (const py::error_already_set&) {
    }
    if (!converted || converted.ndim() > 1)
      throw py::type_error(std::string(column_) + "[" + std::to_string(i) +
                           "] must be a sequence of levels (numbers), None for no book");
    converted_.push_back(converted);
    r.data = reinterpret_cast<const char*>(converted.data());
    r.stride = sizeof(double);
    r.count = static_cast<size_t>(converted.size());
    return r;
  }

  double level(const Row& r, size_t k, size_t i) const {
    if (r.data != nullptr) {
      double v;
      std::memcpy(&v, r.data + static_cast<py::ssize_t>(k) * r.stride, sizeof v);
      return v;
    }
    const double v = PyFloat_AsDouble(r.items[k]);
    if (v == -1.0 && PyErr_Occurred()) {
      PyErr_Clear();
      throw py::type_error(std::string(column_) + "[" + std::to_string(i) + "][" + std::to_string(k) +
                           "] is not a number");
    }
    return v;
  }

 private:
  const char* column_;
  py::dtype float64_ = py::dtype::of<double>();
  std::vector<py::object> converted_;
};

// A DataFrame's book column handed to the encoder row by row, with no matrix built: a row
// that is a contiguous, aligned float64 array is read in place; any other (a list, a strided
// or converted array) is copied once into `copied_`.  The encoder reads the cells' memory, so
// the caller keeps the GIL until it is done (no other thread can replace a cell meanwhile).
// Errors name the cell as book_matrix's do, found in the same order (cells, then levels).
class BookColumn {
 public:
  BookColumn(const py::array& values, const char* column) : reader_(column) {
    const size_t n = static_cast<size_t>(values.size());
    const auto* base = static_cast<const char*>(values.data());
    const auto stride = values.strides(0);
    std::vector<BookRows::Row> rows(n);
    rows_.assign(n, nullptr);
    counts_.assign(n, 0);
    size_t to_copy = 0;
    for (size_t i = 0; i < n; ++i) {
      const BookRows::Row r =
          reader_.row(*reinterpret_cast<PyObject* const*>(base + static_cast<py::ssize_t>(i) * stride), i);
      counts_[i] = r.count;
      if (r.count == 0) continue;
      if (r.data != nullptr && (r.stride == sizeof(double) || r.count == 1) &&
          reinterpret_cast<uintptr_t>(r.data) % alignof(double) == 0) {
        rows_[i] = reinterpret_cast<const double*>(r.data);
      } else {
        rows[i] = r;
        to_copy += r.count;
      }
    }
    copied_.resize(to_copy);
    size_t at = 0;
    for (size_t i = 0; i < n; ++i) {
      if (counts_[i] == 0 || rows_[i] != nullptr) continue;
      for (size_t k = 0; k < counts_[i]; ++k) copied_[at + k] = reader_.level(rows[i], k, i);
      rows_[i] = copied_.data() + at;
      at += counts_[i];
    }
  }
  size_t size() const { return rows_.size(); }
  const double* const* rows() const { return rows_.data(); }
  const size_t* counts() const { return counts_.data(); }

 private:
  BookRows reader_;  // keeps converted cells alive
  std::vector<const double*> rows_;
  std::vector<size_t> counts_;
  std::vector<double> copied_;
};

py::array book_matrix(const py::array& values, const char* column) {
  if (values.ndim() != 1 || values.dtype().kind() != 'O')
    throw py::type_error(std::string(column) + ": expected a one-dimensional object array of rows");
  const size_t n = static_cast<size_t>(values.size());
  const auto* base = static_cast<const char*>(values.data());
  const auto stride = values.strides(0);
  BookRows reader(column);
  std::vector<BookRows::Row> rows(n);
  size_t levels = 0;
  for (size_t i = 0; i < n; ++i) {
    rows[i] = reader.row(*reinterpret_cast<PyObject* const*>(base + static_cast<py::ssize_t>(i) * stride), i);
    levels = std::max(levels, rows[i].count);
  }
  py::array_t<double> out(std::vector<py::ssize_t>{static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(levels)});
  double* o = out.mutable_data();
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < rows[i].count; ++k) o[i * levels + k] = reader.level(rows[i], k, i);
    for (size_t k = rows[i].count; k < levels; ++k) o[i * levels + k] = 0.0;
  }
  return out;
}
}  // namespace

void bind_wire(py::module_& m) {
  m.attr("WIRE_SCHEMA_VERSION") = wire::kSchemaVersion;
  m.attr("WIRE_FILE_IDENTIFIER") = py::bytes(wire::kFileIdentifier, 4);
  std::vector<std::string> reasons;
  for (int i = 1; i < wire::kDecodeErrorCount; ++i)
    reasons.push_back(wire::decode_error_name(static_cast<wire::DecodeError>(i)));
  m.attr("WIRE_DECODE_ERRORS") = reasons;

  m.def(
      "_wire_encode_spots",
      [](py::handle spots_in, const py::tuple& header, bool auto_market_time) {
        wire::Header h = to_header(header);
        py::object spots = py::reinterpret_steal<py::object>(PySequence_Fast(spots_in.ptr(), "spots must be a sequence"));
        if (!spots) throw py::error_already_set();
        const size_t n = static_cast<size_t>(PySequence_Fast_GET_SIZE(spots.ptr()));
        std::vector<const Spot*> ptrs(n);
        py::detail::make_caster<Spot> caster;
        for (size_t i = 0; i < n; ++i) {
          py::handle item = PySequence_Fast_GET_ITEM(spots.ptr(), static_cast<py::ssize_t>(i));
          if (!caster.load(item, false))
            throw py::type_error("spots[" + std::to_string(i) + "] is a " +
                                 std::string(py::str(py::type::handle_of(item).attr("__name__"))) + ", not a Spot");
          ptrs[i] = &static_cast<const Spot&>(caster);
        }
        thread_local wire::Encoder encoder;  // keeps its buffer between messages
        wire::ByteView v;
        {
          py::gil_scoped_release release;
          if (auto_market_time) h.market_time_ms = wire::max_epoch_ms(ptrs.data(), n);
          v = encoder.encode_spots(h, ptrs.data(), n);
        }
        return to_bytes(v);
      },
      py::arg("spots"), py::arg("header"), py::arg("auto_market_time"),
      "spots: a sequence of Spot; header: (publisher_id, sequence, cycle_id, part_index, part_count, "
      "send_time_us, market_time_ms, session_epoch, heartbeat, simulated_time, day_end, changes_only).");

  m.def(
      "_wire_encode_columns",
      [](const py::array& symbol, const Int64Array& datetime_ms, const DoubleArray& close, const DoubleArray& volume,
         const DoubleArray& amount, const std::optional<DoubleArray>& open, const std::optional<DoubleArray>& high,
         const std::optional<DoubleArray>& low, const std::optional<DoubleArray>& yesterday_close,
         const std::optional<py::array>& name, const std::optional<py::array>& bid,
         const std::optional<py::array>& bid_volume, const std::optional<py::array>& ask,
         const std::optional<py::array>& ask_volume, const py::tuple& header) {
        const wire::Header h = to_header(header);
        std::string symbol_storage, name_storage;
        const auto symbols = string_views(symbol, "symbol", false, &symbol_storage);
        const size_t n = symbols.size();
        std::vector<std::string_view> names;
        if (name) {
          names = string_views(*name, "name", true, &name_storage);
          if (names.size() != n) throw py::value_error("name must have one value per symbol");
        }
        wire::EncodeColumns c;
        c.n = n;
        c.symbols = symbols.data();
        if (datetime_ms.ndim() != 1 || static_cast<size_t>(datetime_ms.size()) != n)
          throw py::value_error("datetime must have one value per symbol");
        c.datetime = datetime_ms.data();
        c.close = column(close, n, "close");
        c.volume = column(volume, n, "volume");
        c.amount = column(amount, n, "amount");
        c.open = column(open, n, "open");
        c.high = column(high, n, "high");
        c.low = column(low, n, "low");
        c.yesterday_close = column(yesterday_close, n, "yesterday_close");
        c.name = name ? names.data() : nullptr;
        // Each book side: an (n, levels) matrix, or (a DataFrame's) object column of per-row levels.
        const std::optional<py::array>* sides[4] = {&bid, &bid_volume, &ask, &ask_volume};
        const char* side_names[4] = {"bid", "bid_volume", "ask", "ask_volume"};
        std::optional<DoubleArray> matrices[4];
        std::optional<BookColumn> by_row[4];
        for (size_t k = 0; k < 4; ++k) {
          if (!*sides[k]) continue;
          const py::array& a = **sides[k];
          if (a.ndim() == 1 && a.dtype().kind() == 'O') {
            by_row[k].emplace(a, side_names[k]);
            if (by_row[k]->size() != n)
              throw py::value_error(std::string(side_names[k]) +
                                    " must be an (n, levels) matrix, all book columns with the same levels");
            c.book_rows[k] = by_row[k]->rows();
            c.book_counts[k] = by_row[k]->counts();
          } else {
            matrices[k] = DoubleArray::ensure(a);
            if (!*matrices[k]) throw py::type_error(std::string(side_names[k]) + " must hold numbers");
            if (matrices[k]->ndim() == 2) c.book_levels = static_cast<size_t>(matrices[k]->shape(1));
          }
        }
        c.bid = book(matrices[0], n, c.book_levels, "bid");
        c.bid_volume = book(matrices[1], n, c.book_levels, "bid_volume");
        c.ask = book(matrices[2], n, c.book_levels, "ask");
        c.ask_volume = book(matrices[3], n, c.book_levels, "ask_volume");
        if (c.book_levels == 0) c.bid = c.bid_volume = c.ask = c.ask_volume = nullptr;  // an empty book
        thread_local wire::Encoder encoder;  // keeps its buffer between messages
        wire::ByteView v;
        if (by_row[0] || by_row[1] || by_row[2] || by_row[3]) {
          v = encoder.encode_columns(h, c);  // reads the cells: under the GIL (BookColumn)
        } else {
          py::gil_scoped_release release;
          v = encoder.encode_columns(h, c);  // std::invalid_argument -> ValueError
        }
        return to_bytes(v);
      },
      py::arg("symbol"), py::arg("datetime_ms"), py::arg("close"), py::arg("volume"), py::arg("amount"),
      py::arg("open").none(true), py::arg("high").none(true), py::arg("low").none(true),
      py::arg("yesterday_close").none(true), py::arg("name").none(true), py::arg("bid").none(true),
      py::arg("bid_volume").none(true), py::arg("ask").none(true), py::arg("ask_volume").none(true),
      py::arg("header"));

  m.def(
      "_wire_book_matrix", [](const py::array& values, const std::string& column) { return book_matrix(values, column.c_str()); },
      py::arg("values"), py::arg("column"),
      "A DataFrame's book column (an object array of per-row levels: arrays, lists, None) as an (n, levels) "
      "float64 matrix, ragged rows padded with 0.");

  m.def(
      "_wire_utf8_column",
      [](const py::array& offsets, const py::array_t<uint8_t, py::array::c_style>& data,
         const std::optional<py::array_t<bool, py::array::c_style>>& null) {
        // Arrow's string layout: row i is data[offsets[i], offsets[i + 1]).
        if (offsets.ndim() != 1 || offsets.size() < 1) throw py::value_error("offsets: one more than the rows");
        const size_t n = static_cast<size_t>(offsets.size()) - 1;
        std::vector<int64_t> at(n + 1);
        if (offsets.dtype().is(py::dtype::of<int32_t>())) {
          auto o = py::array_t<int32_t, py::array::c_style | py::array::forcecast>::ensure(offsets);
          std::copy_n(o.data(), n + 1, at.begin());
        } else {
          auto o = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(offsets);
          std::copy_n(o.data(), n + 1, at.begin());
        }
        size_t width = 1;
        for (size_t i = 0; i < n; ++i) {
          if (at[i + 1] < at[i] || at[i] < 0 || at[i + 1] > static_cast<int64_t>(data.size()))
            throw py::value_error("offsets out of order or past the data");
          width = std::max(width, static_cast<size_t>(at[i + 1] - at[i]));
        }
        if (null && static_cast<size_t>(null->size()) != n) throw py::value_error("null: one flag per row");
        py::array out(py::dtype("S" + std::to_string(width)), std::vector<py::ssize_t>{static_cast<py::ssize_t>(n)});
        char* o = static_cast<char*>(out.mutable_data());
        std::memset(o, 0, n * width);
        for (size_t i = 0; i < n; ++i)
          if (!null || !null->data()[i])
            std::memcpy(o + i * width, data.data() + at[i], static_cast<size_t>(at[i + 1] - at[i]));
        return out;
      },
      py::arg("offsets"), py::arg("data"), py::arg("null") = py::none(),
      "An Arrow string column (offsets, UTF-8 data, null flags) as a numpy bytes array (null rows b''), "
      "without a Python str per row.");

  m.def(
      "_wire_decode_header",
      [](py::handle buf) {
        InputBuffer in(buf);
        wire::Header h;
        wire::DecodeError e;
        {
          py::gil_scoped_release release;
          e = wire::decode_header(in.data(), in.size(), &h);
        }
        if (e != wire::DecodeError::None) raise_wire_error(e, in);
        return from_header(h);
      },
      py::arg("buf"));

  m.def(
      "_wire_decode_spots",
      [](py::handle buf) -> py::list {
        InputBuffer in(buf);
        if (spot_objects_in_place()) {  // each record read straight into its Python object
          const size_t n = wire::spot_count(in.data(), in.size());
          std::vector<Spot*> storage;
          std::vector<py::object> objects = blank_spot_objects(n, &storage);
          std::vector<uint8_t> valid(n);
          wire::DecodeError e;
          {
            py::gil_scoped_release release;  // the objects are ours alone until returned
            e = wire::decode_spots_into(in.data(), in.size(), nullptr, storage.data(), n, valid.data());
          }
          if (e != wire::DecodeError::None) raise_wire_error(e, in);
          const auto kept = static_cast<py::ssize_t>(std::count(valid.begin(), valid.end(), uint8_t{1}));
          py::list out(kept);
          py::ssize_t j = 0;
          for (size_t i = 0; i < n; ++i)
            if (valid[i]) PyList_SET_ITEM(out.ptr(), j++, objects[i].release().ptr());
          return out;  // the rows with an invalid symbol go with `objects`
        }
        thread_local wire::DecodedColumns cols;  // keeps its capacity between messages
        wire::DecodeError e;
        {
          py::gil_scoped_release release;
          e = wire::decode_columns(in.data(), in.size(), nullptr, &cols, true);
        }
        if (e != wire::DecodeError::None) raise_wire_error(e, in);
        return spot_objects(cols);
      },
      py::arg("buf"), "The batch's spots with a valid symbol, in order (invalid market/code rows are left out).");

  m.def(
      "_wire_decode_columns",
      [](py::handle buf) {
        InputBuffer in(buf);
        auto cols = std::make_shared<wire::DecodedColumns>();  // handed to the arrays, never reused
        wire::DecodeError e;
        {
          py::gil_scoped_release release;
          e = wire::decode_columns(in.data(), in.size(), nullptr, cols.get());
        }
        if (e != wire::DecodeError::None) raise_wire_error(e, in);
        return shared_columns(std::move(cols), true);  // this caller's alone: writeable
      },
      py::arg("buf"));
}

}  // namespace hkrt::bindings
