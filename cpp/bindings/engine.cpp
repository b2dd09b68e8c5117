// hkrt._hkrt.Engine: the K-line engine; hkrt.SpotAgent (Python) wraps it with pandas.
#include <pybind11/stl.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "calendar.h"
#include "convert.h"
#include "kdata/engine.h"
#include "spot_agent/agent_core.h"
#include "spot_agent/completed_queue.h"

namespace hkrt::bindings {

namespace {
using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;
using Int64Array = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

uint32_t key_of(std::string_view text) {
  auto s = parse_symbol(text);
  return s ? s->key() : kInvalidSymbolKey;
}

// Symbols of a numpy array of bytes ('S'), str ('U') or Python objects, as engine keys; a
// uint32 array is taken as keys already (Engine.symbol_keys()).
// Unparseable entries become kInvalidSymbolKey and are rejected, counted, by the engine.
std::vector<uint32_t> symbol_keys(const py::array& symbols) {
  const size_t n = static_cast<size_t>(symbols.size());
  std::vector<uint32_t> keys(n);
  if (symbols.ndim() != 1) throw py::value_error("symbol must be a one-dimensional array");
  const char kind = symbols.dtype().kind();
  const size_t width = static_cast<size_t>(symbols.itemsize());
  const auto stride = symbols.strides(0);
  const char* base = static_cast<const char*>(symbols.data());
  // A feed sends the same symbols in every push: the keys of the last array of bytes or str
  // are kept (per thread) and reused while its bytes are the same, a compare instead of a parse.
  thread_local std::vector<char> last_bytes;
  thread_local std::vector<uint32_t> last_keys;
  thread_local char last_kind = 0;
  const bool cacheable = (kind == 'S' || kind == 'U') && static_cast<size_t>(stride) == width;
  const size_t bytes = n * width;
  if (cacheable && kind == last_kind && last_bytes.size() == bytes && last_keys.size() == n &&
      (n == 0 || std::memcmp(last_bytes.data(), base, bytes) == 0))
    return last_keys;
  if (kind == 'S') {
    py::gil_scoped_release release;
    for (size_t i = 0; i < n; ++i) {
      const char* p = base + i * stride;
      keys[i] = key_of(std::string_view(p, strnlen(p, width)));
    }
  } else if (kind == 'U') {
    py::gil_scoped_release release;
    char buf[16];
    for (size_t i = 0; i < n; ++i) {
      const char32_t* p = reinterpret_cast<const char32_t*>(base + i * stride);
      size_t len = 0;
      bool ascii = true;
      for (; len < width / 4 && p[len] != 0; ++len) {
        if (len >= sizeof buf || p[len] > 127) ascii = false;
        if (ascii) buf[len] = static_cast<char>(p[len]);
      }
      keys[i] = ascii ? key_of(std::string_view(buf, len)) : kInvalidSymbolKey;
    }
  } else if (kind == 'u' && width == sizeof(uint32_t)) {  // keys from Engine.symbol_keys(), resolved once
    for (size_t i = 0; i < n; ++i) std::memcpy(&keys[i], base + i * stride, sizeof(uint32_t));
  } else if (kind == 'O') {
    for (size_t i = 0; i < n; ++i) {
      py::handle item = *reinterpret_cast<PyObject* const*>(base + i * stride);
      keys[i] = py::isinstance<py::str>(item) ? key_of(item.cast<std::string>()) : kInvalidSymbolKey;
    }
  } else {
    throw py::type_error("symbol must be an array of str or bytes such as 'SH600000'");
  }
  if (cacheable) {
    last_kind = kind;
    last_bytes.assign(base, base + bytes);
    last_keys = keys;
  }
  return keys;
}

const double* optional_data(const std::optional<DoubleArray>& a, size_t n, const char* name) {
  if (!a) return nullptr;
  if (static_cast<size_t>(a->size()) != n) throw py::value_error(std::string(name) + " has a different length");
  return a->data();
}

py::dict stats_dict(const EngineStats& s) {
  py::dict rejected;
  for (int i = 0; i < kRejectReasonCount; ++i)
    rejected[reject_reason_name(static_cast<RejectReason>(i))] = s.rejected[static_cast<size_t>(i)];
  py::dict d;
  d["received"] = s.received;
  d["accepted"] = s.accepted;
  d["duplicates"] = s.duplicates;
  d["rejected"] = rejected;
  d["rejected_total"] = s.rejected_total();
  d["carry_in"] = s.carry_in;
  d["filled_bars"] = s.filled_bars;
  d["amended_bars"] = s.amended_bars;
  d["gap_volume"] = s.gap_volume_days;
  d["gap_spans"] = s.gap_spans;
  d["gap_spans_repaired"] = s.gap_spans_repaired;
  d["gap_repair_mismatches"] = s.gap_repair_mismatches;
  d["after_hours"] = s.after_hours_days;
  d["period_history_merged"] = s.period_history_merged;
  d["period_history_replaced"] = s.period_history_replaced;
  d["symbols"] = s.symbols;
  return d;
}

const char* outcome_name(const IngestResult& r) {
  switch (r.outcome) {
    case IngestOutcome::Accepted:
      return "accepted";
    case IngestOutcome::Duplicate:
      return "duplicate";
    default:
      return reject_reason_name(r.reason);
  }
}

struct RecordPool;

// The engine object Python holds: the agent core plus the completed bars it collected
// for the Python hooks since they were last taken.
struct PyEngine {
  PyEngine(const EngineConfig& config, int shards, const AgentConfig& agent) : core(config, shards, agent) {}
  AgentCore core;
  CompletedQueue completed;  // bounded: cpp/spot_agent/completed_queue.h
  std::shared_ptr<RecordPool> records;  // blocks take_completed's arrays view (made on first use)
  std::mutex calls;  // ingest calls and take_completed, one at a time
  CompletedBars* sink() { return completed.sink(); }
  ShardedEngine& engine() { return core.engine(); }

  // Runs f under `calls` with the GIL released.  Every read takes the lock too: the
  // receiver thread ingests without the GIL, so a read from another Python thread (a
  // strategy reading bars in a callback) would otherwise race with it.  Nothing holding
  // `calls` ever waits for the GIL, so the two locks cannot deadlock.
  template <class F>
  auto locked(F&& f) {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(calls);
    return f();
  }
};

// Bars from Python columns of equal length (history, a source's minute bars).
std::vector<Bar> bars_of(const Int64Array& datetime_ms, const DoubleArray& open, const DoubleArray& high,
                         const DoubleArray& low, const DoubleArray& close, const DoubleArray& volume,
                         const DoubleArray& amount) {
  const size_t n = static_cast<size_t>(datetime_ms.size());
  for (const DoubleArray* a : {&open, &high, &low, &close, &volume, &amount})
    if (static_cast<size_t>(a->size()) != n) throw py::value_error("all columns must have the same length");
  std::vector<Bar> bars(n);
  for (size_t i = 0; i < n; ++i)
    bars[i] = Bar{datetime_ms.data()[i], open.data()[i],   high.data()[i],  low.data()[i],
                  close.data()[i],       volume.data()[i], amount.data()[i]};
  return bars;
}

struct CompletedRecord {
  char symbol[8];
  uint8_t ktype;
  uint8_t padding[7];
  Bar bar;
  uint8_t amended;  // reported before; a late spot changed it
  uint8_t padding2[7];
};
static_assert(sizeof(CompletedRecord) == 88, "CompletedRecord layout is described to numpy below");

void fill_records(const CompletedBars& bars, CompletedRecord* rec);
py::array completed_to_array(const CompletedBars& bars);

py::dtype completed_dtype() {
  static py::object* dt = [] {
    py::list names, formats, offsets;
    auto field = [&](const char* name, const char* format, size_t offset) {
      names.append(name);
      formats.append(format);
      offsets.append(offset);
    };
    field("symbol", "S8", offsetof(CompletedRecord, symbol));
    field("ktype", "u1", offsetof(CompletedRecord, ktype));
    field("datetime", "M8[ms]", offsetof(CompletedRecord, bar) + offsetof(Bar, datetime));
    field("open", "<f8", offsetof(CompletedRecord, bar) + offsetof(Bar, open));
    field("high", "<f8", offsetof(CompletedRecord, bar) + offsetof(Bar, high));
    field("low", "<f8", offsetof(CompletedRecord, bar) + offsetof(Bar, low));
    field("close", "<f8", offsetof(CompletedRecord, bar) + offsetof(Bar, close));
    field("volume", "<f8", offsetof(CompletedRecord, bar) + offsetof(Bar, volume));
    field("amount", "<f8", offsetof(CompletedRecord, bar) + offsetof(Bar, amount));
    field("filled", "?", offsetof(CompletedRecord, bar) + offsetof(Bar, filled));
    field("amended", "?", offsetof(CompletedRecord, amended));
    return new py::object(py::dtype(names, formats, offsets, sizeof(CompletedRecord)));
  }();
  return py::reinterpret_borrow<py::dtype>(*dt);
}

// Record blocks the completed-bar arrays are views of, reused once no array holds them: a
// minute boundary hands over ~5,500 records (0.5 MB, 2 MB at a 15-minute one), and a fresh
// block each time is fresh pages, faulted in while the message waits.  Bound and policy: at
// most kMaxFree blocks wait for reuse (those returned past it are freed); a block still held
// (the store queue keeps its array until it writes) is simply not reused, a new one is made.
struct RecordPool {
  struct Block {
    std::unique_ptr<CompletedRecord[]> records;
    size_t capacity = 0;
  };
  static constexpr size_t kMaxFree = 4;
  std::mutex mutex;  // taken briefly, never while waiting for the GIL
  std::vector<Block> free;

  Block acquire(size_t n) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      for (size_t i = free.size(); i > 0; --i) {
        if (free[i - 1].capacity < n) continue;
        Block b = std::move(free[i - 1]);
        free.erase(free.begin() + static_cast<std::ptrdiff_t>(i - 1));
        return b;
      }
    }
    const size_t capacity = std::max<size_t>(n, 1024);
    return Block{std::unique_ptr<CompletedRecord[]>(new CompletedRecord[capacity]), capacity};
  }
  void release(Block b) {
    std::lock_guard<std::mutex> lock(mutex);
    if (free.size() < kMaxFree) free.push_back(std::move(b));
  }
};

// What a completed-bar array's base capsule owns: its block, returned to the pool when the
// last view of it is gone.
struct HeldBlock {
  RecordPool::Block block;
  std::shared_ptr<RecordPool> pool;
};

py::array completed_to_array(const CompletedBars& bars, const std::shared_ptr<RecordPool>& pool) {
  if (bars.empty() || !pool) return completed_to_array(bars);
  auto* held = new HeldBlock{pool->acquire(bars.size()), pool};
  py::capsule base(held, [](void* p) {
    auto* h = static_cast<HeldBlock*>(p);
    h->pool->release(std::move(h->block));
    delete h;
  });
  CompletedRecord* rec = held->block.records.get();
  fill_records(bars, rec);
  return py::array(completed_dtype(), std::vector<py::ssize_t>{static_cast<py::ssize_t>(bars.size())},
                   std::vector<py::ssize_t>{static_cast<py::ssize_t>(sizeof(CompletedRecord))}, rec, base);
}

py::array completed_to_array(const CompletedBars& bars) {
  py::array out(completed_dtype(), std::vector<py::ssize_t>{static_cast<py::ssize_t>(bars.size())});
  fill_records(bars, static_cast<CompletedRecord*>(out.mutable_data()));
  return out;
}

void fill_records(const CompletedBars& bars, CompletedRecord* rec) {
  for (size_t i = 0; i < bars.size(); ++i) {
    Symbol::from_key(bars[i].symbol_key).write(rec[i].symbol);
    rec[i].ktype = static_cast<uint8_t>(bars[i].ktype);
    rec[i].amended = bars[i].amended ? 1 : 0;
    std::memset(rec[i].padding2, 0, sizeof rec[i].padding2);
    std::memset(rec[i].padding, 0, sizeof rec[i].padding);
    rec[i].bar = bars[i].bar;
  }
}

py::dict message_dict(const MessageResult& r) {
  py::dict d;
  d["error"] = wire::decode_error_name(r.error);
  d["sequence_status"] = sequence_status_name(r.verdict.status);
  d["missing"] = r.verdict.missing();
  d["gap_first"] = r.verdict.gap_first;
  d["gap_last"] = r.verdict.gap_last;
  d["spots"] = r.spots;
  d["accepted"] = r.accepted;
  d["publisher_id"] = r.header.publisher_id;
  d["session_epoch"] = r.header.session_epoch;
  d["sequence"] = r.header.sequence;
  d["cycle_id"] = r.header.cycle_id;
  d["part_index"] = r.header.part_index;
  d["part_count"] = r.header.part_count;
  d["send_time_us"] = r.header.send_time_us;
  d["heartbeat"] = r.header.heartbeat;
  d["day_end"] = r.header.heartbeat && r.header.day_end;
  d["simulated_time"] = r.header.simulated_time;
  d["market_time_ms"] = r.market_time_ms;  // as far as the accepted spots vouch for it
  d["header_market_time_ms"] = r.header.market_time_ms;
  d["held"] = r.held;
  py::list cycles;
  for (const CycleSummary& c : r.cycles_over)
    cycles.append(py::make_tuple(c.publisher_id, c.cycle_id, c.parts_expected, c.parts_received, c.spots, c.accepted,
                                 c.complete(), c.joined_mid_cycle, c.first_send_us, c.market_time_ms));
  d["cycles"] = cycles;
  return d;
}

py::dict message_stats_dict(const MessageStats& s) {
  py::dict rejected;
  for (int i = 1; i < wire::kDecodeErrorCount; ++i)
    rejected[wire::decode_error_name(static_cast<wire::DecodeError>(i))] = s.rejected[static_cast<size_t>(i)];
  const SequenceCounters& q = s.sequence;
  py::dict d;
  d["messages"] = s.messages;
  d["rejected"] = rejected;
  d["unnumbered"] = q.unnumbered;
  d["duplicate_messages"] = q.duplicate_messages;
  d["gaps"] = q.gaps;
  d["missing_messages"] = q.missing_messages;
  d["recovered_messages"] = q.recovered_messages;
  d["forgotten_messages"] = q.forgotten_messages;
  d["late_joins"] = q.late_joins;
  d["publisher_restarts"] = q.publisher_restarts;
  d["old_session_messages"] = q.old_session_messages;
  d["anomalies"] = q.anomalies;
  d["heartbeats"] = q.heartbeats;
  d["forgotten_sessions"] = q.forgotten_sessions;
  d["publishers"] = q.publishers;
  d["market_time_clamped"] = s.market_time_clamped;
  d["market_time_invalid"] = s.market_time_invalid;
  d["held"] = s.held;
  d["cycles"] = s.cycles.cycles;
  d["incomplete_cycles"] = s.cycles.incomplete_cycles;
  d["abandoned_cycles"] = s.cycles.abandoned_cycles;
  d["symbol_cache_hits"] = s.symbol_cache_hits;
  d["symbol_cache_misses"] = s.symbol_cache_misses;
  return d;
}
}  // namespace

void bind_engine(py::module_& m) {
  py::class_<PyEngine> cls(m, "Engine", "The C++ agent core (sharded K-line engine + wire decoding). Use hkrt.SpotAgent.");
  cls.def(py::init([](const std::vector<std::string>& ktypes, const py::iterable& holidays, bool fill_empty_bars,
                      int shards, const py::object& coverage, double max_ahead_seconds,
                      double market_time_slack_seconds, size_t max_message_bytes, uint64_t sequence_window) {
            EngineConfig config;
            config.ktypes.clear();
            for (const auto& k : ktypes) config.ktypes.push_back(to_ktype(py::str(k)));
            config.calendar = calendar_from(holidays, coverage);
            config.fill_empty_bars = fill_empty_bars;
            if (shards < 1 || shards > 64) throw py::value_error("shards must be between 1 and 64");
            if (!(max_ahead_seconds >= 0) || !(market_time_slack_seconds >= 0))
              throw py::value_error("max_ahead_seconds and market_time_slack_seconds must be >= 0");
            if (sequence_window < 1) throw py::value_error("sequence_window must be >= 1");
            AgentConfig agent;
            agent.max_ahead_ms = static_cast<int64_t>(std::min(max_ahead_seconds, 1e9) * 1000);
            agent.market_time_slack_ms = static_cast<int64_t>(std::min(market_time_slack_seconds, 1e9) * 1000);
            agent.max_message_bytes = max_message_bytes;
            agent.sequence.window = sequence_window;
            return std::make_unique<PyEngine>(config, shards, agent);
          }),
          py::arg("ktypes"), py::arg("holidays"), py::arg("fill_empty_bars") = true, py::arg("shards") = 1,
          py::arg("coverage") = py::none(), py::arg("max_ahead_seconds") = 60.0,
          py::arg("market_time_slack_seconds") = 60.0, py::arg("max_message_bytes") = size_t{64} << 20,
          py::arg("sequence_window") = uint64_t{1} << 20);

  cls.def_property(
      "collect_completed", [](PyEngine& e) { return e.completed.collecting(); },
      [](PyEngine& e, bool on) {
        std::lock_guard<std::mutex> lock(e.calls);
        e.completed.set_collecting(on);
      },
      "Keep the bars completed by each call for take_completed().");
  cls.def(
      "take_completed",
      [](PyEngine& e) {
        // Converted under the lock: the queue hands its bars over in a buffer it reuses (no
        // allocation at a minute boundary).  Holding the GIL here is safe: nothing holding
        // `calls` waits for the GIL.
        std::lock_guard<std::mutex> lock(e.calls);
        if (!e.records) e.records = std::make_shared<RecordPool>();
        return completed_to_array(e.completed.take_reusing(), e.records);
      },
      "The bars completed since the last call, oldest first, as a numpy structured array.");

  cls.def(
      "ingest_spots",
      [](PyEngine& e, const py::sequence& spots) {
        const size_t n = py::len(spots);
        std::vector<const Spot*> ptrs(n);
        for (size_t i = 0; i < n; ++i) {
          py::handle item = spots[i];
          if (!py::isinstance<Spot>(item))
            throw py::type_error("item " + std::to_string(i) + " is a " +
                                 std::string(py::str(py::type::handle_of(item).attr("__name__"))) + ", not an hkrt.Spot");
          ptrs[i] = item.cast<const Spot*>();
        }
        py::gil_scoped_release release;
        std::lock_guard<std::mutex> lock(e.calls);
        return e.engine().ingest(ptrs.data(), n, e.sink());
      },
      py::arg("spots"), "Ingest Spot objects in order; returns how many were accepted.");

  cls.def(
      "ingest_one",
      [](PyEngine& e, const Spot& s) {
        std::lock_guard<std::mutex> lock(e.calls);
        return std::string(outcome_name(e.engine().ingest_one(s, e.sink())));
      },
      py::arg("spot"), "Ingest one spot; returns 'accepted', 'duplicate' or the reject reason.");

  cls.def(
      "ingest_columns",
      [](PyEngine& e, const py::array& symbol, const Int64Array& datetime_ms, const DoubleArray& close,
         const DoubleArray& volume, const DoubleArray& amount, const std::optional<DoubleArray>& open,
         const std::optional<DoubleArray>& high, const std::optional<DoubleArray>& low) {
        const size_t n = static_cast<size_t>(symbol.size());
        if (static_cast<size_t>(datetime_ms.size()) != n || static_cast<size_t>(close.size()) != n ||
            static_cast<size_t>(volume.size()) != n || static_cast<size_t>(amount.size()) != n)
          throw py::value_error("all columns must have the same length");
        std::vector<uint32_t> keys = symbol_keys(symbol);
        SpotColumns c;
        c.n = n;
        c.symbol_keys = keys.data();
        c.datetime = datetime_ms.data();
        c.close = close.data();
        c.volume = volume.data();
        c.amount = amount.data();
        c.open = optional_data(open, n, "open");
        c.high = optional_data(high, n, "high");
        c.low = optional_data(low, n, "low");
        py::gil_scoped_release release;
        std::lock_guard<std::mutex> lock(e.calls);
        return e.engine().ingest_columns(c, e.sink());
      },
      py::arg("symbol"), py::arg("datetime_ms"), py::arg("close"), py::arg("volume"), py::arg("amount"),
      py::arg("open") = py::none(), py::arg("high") = py::none(), py::arg("low") = py::none(),
      "Ingest numpy columns (datetime as int64 local-time milliseconds); returns accepted count.");

  cls.def(
      "ingest_message",
      [](PyEngine& e, const py::buffer& message, bool hold_gaps, bool columns, bool spots,
         std::optional<int64_t> advance_delay_ms) {
        py::buffer_info info = message.request();
        if (info.ndim > 1 || (info.ndim == 1 && info.strides[0] != info.itemsize))
          throw py::value_error("a message must be a contiguous bytes-like object");
        const auto* data = static_cast<const uint8_t*>(info.ptr);
        const size_t size = static_cast<size_t>(info.size * info.itemsize);
        MessageResult result;
        EngineStats after;
        bool advanced = false;
        size_t waiting = 0;
        {
          py::gil_scoped_release release;
          std::lock_guard<std::mutex> lock(e.calls);
          result = e.core.ingest_message(data, size, e.sink(), hold_gaps, spots);
          if (advance_delay_ms && !result.header.heartbeat) {
            // The latest cycle the message ended moves the market clock, here under the same
            // lock rather than in another call from Python (one GIL round trip less a message).
            int64_t market_time_ms = 0;
            for (const CycleSummary& c : result.cycles_over) market_time_ms = std::max(market_time_ms, c.market_time_ms);
            if (market_time_ms) {
              e.engine().advance_to(wire::to_local_ms(market_time_ms - *advance_delay_ms), e.sink());
              advanced = true;
            }
          }
          after = e.engine().stats();
          waiting = e.completed.size();
        }
        py::dict d = message_dict(result);
        d["advanced"] = advanced;
        d["completed_waiting"] = waiting;  // 0: take_completed() would give nothing (no call needed)
        d["unplaced"] = py::make_tuple(after.gap_spans, after.after_hours_days);
        if (result.columns) {
          if (columns) d["columns"] = shared_columns(result.columns);
          if (spots) d["spot_objects"] = spot_objects(*result.columns);
        }
        return d;
      },
      py::arg("message"), py::arg("hold_gaps") = false, py::arg("columns") = false, py::arg("spots") = false,
      py::arg("advance_delay_ms") = py::none(),
      "Verify, decode and aggregate one wire message; returns its header, sequence status, counts and the\n"
      "publisher cycles it ended ('cycles': (publisher_id, cycle_id, parts_expected, parts_received, spots,\n"
      "accepted, complete, joined_mid_cycle, first_send_us, market_time_ms) each).  A processed message's\n"
      "spots, decoded once: 'columns' (with columns=True: read-only numpy views, see hkrt.wire.decode_columns)\n"
      "and 'spot_objects' (with spots=True: list[Spot] of the rows with a valid symbol).  'unplaced': the\n"
      "engine's (gap_spans, after_hours) counters after the message.  With advance_delay_ms, a message that ended\n"
      "cycles also runs advance_to(latest cycle's market time - advance_delay_ms) ('advanced': True), as the\n"
      "agent does at a cycle's end.  'completed_waiting': the completed bars take_completed() would return now.");

  cls.def(
      "advance_to",
      [](PyEngine& e, py::handle now) {
        const TimestampMs t = to_timestamp(now);
        py::gil_scoped_release release;
        std::lock_guard<std::mutex> lock(e.calls);
        e.engine().advance_to(t, e.sink());
      },
      py::arg("now"));

  cls.def(
      "repair_gaps",
      [](PyEngine& e, py::handle symbol, const Int64Array& datetime_ms, const DoubleArray& open, const DoubleArray& high,
         const DoubleArray& low, const DoubleArray& close, const DoubleArray& volume, const DoubleArray& amount) {
        std::vector<Bar> bars = bars_of(datetime_ms, open, high, low, close, volume, amount);
        const size_t n = bars.size();
        const Symbol sym = to_symbol(symbol);
        const auto r = e.locked([&] { return e.engine().shard_of(sym).repair_gaps(sym, bars.data(), n, e.sink()); });
        py::dict d;
        d["repaired"] = r.repaired;
        d["mismatched"] = r.mismatched;
        d["pending"] = r.pending;
        d["volume"] = r.volume;
        d["amount"] = r.amount;
        return d;
      },
      py::arg("symbol"), py::arg("datetime_ms"), py::arg("open"), py::arg("high"), py::arg("low"), py::arg("close"),
      py::arg("volume"), py::arg("amount"),
      "Place the symbol's gap volume into its minutes from a source's MIN bars of its current day.");

  cls.def(
      "preload",
      [](PyEngine& e, py::handle symbol, py::handle ktype, const Int64Array& datetime_ms, const DoubleArray& open,
         const DoubleArray& high, const DoubleArray& low, const DoubleArray& close, const DoubleArray& volume,
         const DoubleArray& amount) {
        std::vector<Bar> bars = bars_of(datetime_ms, open, high, low, close, volume, amount);
        const size_t n = bars.size();
        const Symbol sym = to_symbol(symbol);
        const KType k = to_ktype(ktype);
        std::string error = e.locked([&] {
          try {
            e.engine().shard_of(sym).preload(sym, k, bars.data(), n);
          } catch (const std::invalid_argument& err) {
            return std::string(err.what());
          }
          return std::string();
        });
        if (!error.empty()) throw py::value_error(error);
      },
      py::arg("symbol"), py::arg("ktype"), py::arg("datetime_ms"), py::arg("open"), py::arg("high"), py::arg("low"),
      py::arg("close"), py::arg("volume"), py::arg("amount"));

  cls.def(
      "bars",
      [](PyEngine& e, py::handle symbol, py::handle ktype) {
        const Symbol sym = to_symbol(symbol);
        const KType k = to_ktype(ktype);
        std::string error;
        std::vector<Bar> bars = e.locked([&] {
          try {
            return e.engine().shard_of(sym).bars(sym, k);
          } catch (const std::invalid_argument& err) {
            error = err.what();
            return std::vector<Bar>();
          }
        });
        if (!error.empty()) throw py::value_error(error);
        return bars_to_array(bars);
      },
      py::arg("symbol"), py::arg("ktype"), "A copy of the bars as a numpy structured array.");

  cls.def(
      "view",
      [](PyEngine& e, py::handle symbol, py::handle ktype) {
        const Symbol sym = to_symbol(symbol);
        const KType k = to_ktype(ktype);
        std::pair<std::shared_ptr<const BarSeries::Buffer>, size_t> shared;
        std::string error = e.locked([&] {
          try {
            shared = e.engine().shard_of(sym).share_bars(sym, k);
          } catch (const std::invalid_argument& err) {
            return std::string(err.what());
          }
          return std::string();
        });
        if (!error.empty()) throw py::value_error(error);
        if (!shared.first || shared.second == 0) return py::array(bar_dtype(), std::vector<py::ssize_t>{0});
        auto* owner = new std::shared_ptr<const BarSeries::Buffer>(shared.first);
        py::capsule keep_alive(owner, [](void* p) { delete static_cast<std::shared_ptr<const BarSeries::Buffer>*>(p); });
        py::array view(bar_dtype(), std::vector<py::ssize_t>{static_cast<py::ssize_t>(shared.second)},
                       std::vector<py::ssize_t>{static_cast<py::ssize_t>(sizeof(Bar))}, shared.first->data(),
                       keep_alive);
        view.attr("flags").attr("writeable") = false;
        return view;
      },
      py::arg("symbol"), py::arg("ktype"), "A read-only numpy view on the engine's bars, without copying.");

  cls.def(
      "carry_in",
      [](PyEngine& e, py::handle symbol) -> py::object {
        const Symbol sym = to_symbol(symbol);
        auto c = e.locked([&] { return e.engine().shard_of(sym).carry_in(sym); });
        if (!c) return py::none();
        return py::make_tuple(to_date(c->day), c->volume, c->amount);
      },
      py::arg("symbol"));
  cls.def(
      "day_totals",
      [](PyEngine& e, py::handle symbol) -> py::object {
        const Symbol sym = to_symbol(symbol);
        auto t = e.locked([&] { return e.engine().shard_of(sym).day_totals(sym); });
        if (!t) return py::none();
        py::dict d;
        d["day"] = to_date(t->day);
        d["carry_volume"] = t->carry_volume;
        d["carry_amount"] = t->carry_amount;
        d["gap_volume"] = t->gap_volume;
        d["gap_amount"] = t->gap_amount;
        d["gap_spans"] = t->gap_spans;
        d["after_hours_volume"] = t->after_hours_volume;
        d["after_hours_amount"] = t->after_hours_amount;
        return d;
      },
      py::arg("symbol"),
      "The symbol's current day: carry-in, gap volume and after-hours volume (None before its first spot).");

  cls.def("symbols", [](PyEngine& e) {
    std::vector<std::string> out;
    for (const Symbol& s : e.locked([&] { return e.engine().symbols(); })) out.push_back(s.str());
    return out;
  });
  cls.def("stats", [](PyEngine& e) { return stats_dict(e.locked([&] { return e.engine().stats(); })); });
  cls.def("message_stats", [](PyEngine& e) {
    uint64_t dropped = 0;
    py::dict d = message_stats_dict(e.locked([&] {
      dropped = e.completed.dropped();
      return e.core.message_stats();
    }));
    d["completed_dropped"] = dropped;  // completed bars nobody took before the queue's bound
    return d;
  });
  cls.def(
      "missing_ranges",
      [](PyEngine& e, uint64_t publisher_id, uint64_t session_epoch) {
        std::vector<std::pair<uint64_t, uint64_t>> out;
        for (const SequenceRange& r : e.locked([&] { return e.core.missing(publisher_id, session_epoch); }))
          out.emplace_back(r.first, r.last);
        return out;
      },
      py::arg("publisher_id"), py::arg("session_epoch"),
      "A publisher session's outstanding missing sequence ranges (inclusive), oldest first.");
  cls.def(
      "newest_accepted",
      [](PyEngine& e) -> py::object {
        const TimestampMs t = e.locked([&] { return e.engine().newest_accepted(); });
        if (t == INT64_MIN) return py::none();
        return py::int_(t);
      },
      "Exchange-local ms of the latest spot accepted so far (the market's own clock), or None.");
  cls.def("memory_bytes", [](PyEngine& e) { return e.locked([&] { return e.engine().memory_bytes(); }); },
          "Bytes held by the engine (states, bar buffers, index).");
  cls.def_property_readonly("shards", [](PyEngine& e) { return e.engine().shard_count(); });
  cls.def("enabled_ktypes", [](PyEngine& e) {
    std::vector<std::string> out;
    for (KType k : e.engine().enabled_ktypes()) out.push_back(ktype_name(k));
    return out;
  });

  // ---- Engine sizing and columns with pre-resolved symbols (added for issue 13, the aggregation half) ----
  cls.def(
      "reserve",
      [](PyEngine& e, const py::array& symbol) {
        std::vector<uint32_t> keys = symbol_keys(symbol);
        e.locked([&] {
          e.engine().reserve(keys.data(), keys.size());
          // A minute boundary completes a bar of each symbol, often two (MIN and MIN3/MIN5).
          e.completed.reserve(2 * keys.size());
        });
      },
      py::arg("symbol"),
      "Pre-size the engine for a trading day of these symbols (the universe, or yesterday's): their states are "
      "created and their series get room for a day of bars, so the day's first message allocates nothing. "
      "Unparseable symbols are skipped; a symbol reserved but never fed is not listed by symbols().");
  cls.def(
      "reserve_next_day", [](PyEngine& e) { e.locked([&] { e.engine().reserve_next_day(); }); },
      "Room for one more day of bars for every symbol the engine holds (call it after a day closed).");
  cls.def(
      "symbol_keys",
      [](PyEngine&, const py::array& symbol) {
        std::vector<uint32_t> keys = symbol_keys(symbol);
        py::array_t<uint32_t> out(static_cast<py::ssize_t>(keys.size()));
        if (!keys.empty()) std::memcpy(out.mutable_data(), keys.data(), keys.size() * sizeof(uint32_t));
        return out;
      },
      py::arg("symbol"),
      "Engine keys of a symbol column (0xFFFFFFFF for an unparseable symbol).  ingest_columns takes them as its "
      "symbol column: a feed that sends the same symbols every push resolves them once.");
  // ---- end of the block ----

  m.attr("COMPLETED_DTYPE") = completed_dtype();
}

}  // namespace hkrt::bindings
