// The spot wire format: FlatBuffers batches of spots (schemas/spot.fbs), encoded and decoded.
//
// This is the only place that converts between the wire's true UTC epoch milliseconds and the
// engine's exchange-local TimestampMs (local = epoch + kChinaUtcOffsetMs).  Every decode
// function verifies the whole buffer first (file identifier, flatbuffers::Verifier on exactly
// `size` bytes, schema version), so no input can make it read out of bounds.  The generated
// FlatBuffers code ("schemas/spot_generated.h", target hkrt_wire) is not needed to use this API.
// docs/wire-format.md describes the format field by field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kdata/engine.h"
#include "kdata/spot.h"

namespace hkrt::wire {

constexpr uint16_t kSchemaVersion = 1;
constexpr char kFileIdentifier[] = "HKSP";  // bytes 4..7 of every message
// Root offset + file identifier: nothing shorter can be a batch (DecodeError::TooShort).
constexpr size_t kMinMessageSize = 8;

struct Header {
  uint16_t schema_version = kSchemaVersion;
  uint64_t publisher_id = 0;  // random per publisher process start
  uint64_t sequence = 0;      // per publisher, +1 per message, first message 1
  uint64_t cycle_id = 0;
  uint32_t part_index = 0;    // 0-based
  uint32_t part_count = 1;
  int64_t send_time_us = 0;    // UTC epoch microseconds (fine enough to measure latency)
  int64_t market_time_ms = 0;  // UTC epoch ms, 0 = unknown
  uint64_t session_epoch = 0;  // UTC epoch µs when the publisher session began, 0 = not given
  bool heartbeat = false;      // an empty "still here" message: `sequence` is the last one sent
  bool simulated_time = false;  // spot times may run ahead of send_time_us (simulation, replay)
  bool day_end = false;  // a heartbeat that ends the market day of market_time_ms: nothing more comes for it
  bool changes_only = false;  // the source sends a symbol only when it changed (a push feed)
};

// As Header::send_time_us: stamp the clock when the message is finished, after its spots
// are encoded, so the time is as close to the send as the encoder can make it.
constexpr int64_t kSendTimeNow = INT64_MIN;

enum class DecodeError : uint8_t { None = 0, TooShort, BadIdentifier, Malformed, UnsupportedVersion, TooLarge };
constexpr int kDecodeErrorCount = 6;
// "ok", "too_short", "bad_identifier", "malformed", "unsupported_version", "too_large"
// (TooLarge: the agent's message size cap, AgentConfig::max_message_bytes; decoders never return it)
const char* decode_error_name(DecodeError e);

// Wire time <-> engine time (saturating at the int64 limits instead of overflowing).
TimestampMs to_local_ms(int64_t epoch_ms);
int64_t to_epoch_ms(TimestampMs local_ms);

// Spot columns for the engine (no strings).  symbol_keys[i] == kInvalidSymbolKey (engine.h)
// when the spot's market/code is not SH/SZ/BJ + six digits; datetime is exchange-local ms.
// With `details` (decode_columns' argument) the fields bars do not need are decoded too, so
// that whole Spot objects can be built from the columns without decoding the message again.
struct DecodedColumns {
  std::vector<uint32_t> symbol_keys;
  std::vector<int64_t> datetime;
  std::vector<double> open, high, low, close, volume, amount;
  // Filled only when decoded with details (else empty):
  bool has_details = false;
  std::vector<double> yesterday_close;
  std::vector<double> bid, bid_volume, ask, ask_volume;  // size() x kBookLevels, row-major, missing levels 0
  std::vector<uint32_t> name_end;  // spot i's name is names[name_end[i-1] (0 for i == 0), name_end[i]): valid UTF-8
  std::string names;
  size_t size() const { return symbol_keys.size(); }
  SpotColumns view() const;  // points into the vectors: valid until they change
  std::string_view name(size_t i) const {
    const size_t begin = i == 0 ? 0 : name_end[i - 1];
    return std::string_view(names).substr(begin, name_end[i] - begin);
  }
  Spot spot(size_t i) const;  // needs details; symbol SH000000 for an invalid symbol key
};

// Wire symbols resolved once per publisher session: a publisher sends the same universe in
// the same order cycle after cycle, so the engine key of row i of part p of a session is
// remembered with the 8 bytes it came from (market + code).  A row whose bytes match takes
// the remembered key without parsing; any other row is parsed and remembered.  Correctness
// never depends on it: every hit is checked against the row's own bytes.
// Bound and policy: at most `max_rows` rows remembered over all (publisher, session, part)
// slots; a slot that would pass it evicts the least recently used slots first (a slot larger
// than the bound alone is not cached: its rows are parsed every time).
class SymbolCache {
 public:
  struct Row {
    uint64_t bytes = ~uint64_t{0};  // market (2) + code (6) as on the wire; all ones = empty
    uint32_t key = 0;
  };
  explicit SymbolCache(size_t max_rows = size_t{1} << 20) : max_rows_(max_rows) {}
  // The rows of one message's slot, sized for n rows (null when n is over the bound).
  Row* rows(uint64_t publisher_id, uint64_t session_epoch, uint32_t part_index, size_t n);
  size_t cached_rows() const { return total_; }
  uint64_t hits = 0, misses = 0;

 private:
  struct Slot {
    std::vector<Row> rows;
    uint64_t used = 0;  // lru clock
  };
  struct Key {
    uint64_t publisher, session;
    uint32_t part;
    bool operator==(const Key& o) const { return publisher == o.publisher && session == o.session && part == o.part; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<uint64_t>()((k.publisher * 0x9E3779B97F4A7C15ull) ^ k.session ^ (uint64_t{k.part} << 40));
    }
  };
  size_t max_rows_;
  size_t total_ = 0;
  uint64_t clock_ = 0;
  std::unordered_map<Key, Slot, KeyHash> slots_;
};

// Identifier, flatbuffers::Verifier on exactly `size` bytes, schema version.
DecodeError verify(const uint8_t* data, size_t size);
// Each of these verifies first; on an error the spot outputs are emptied and the header untouched.
DecodeError decode_header(const uint8_t* data, size_t size, Header* out);
// Reuses out's capacity.  `header` may be null.  One pass over the spots verifies each
// record exactly as flatbuffers::Verifier would (same bounds and alignment rules, a test
// holds the two equal on fuzzed input) and reads its fields while it is in cache.
// `symbols` (may be null): resolve wire symbols through this per-session cache.
DecodeError decode_columns(const uint8_t* data, size_t size, Header* header, DecodedColumns* out,
                           bool details = false, SymbolCache* symbols = nullptr);
// Replaces *out.  valid_symbol[i] is 0 when spot i's market/code is invalid (its Spot then has
// the default symbol SH000000 and must be skipped); `header` and `valid_symbol` may be null.
// Book vectors longer than kBookLevels are truncated, shorter ones padded with 0.
DecodeError decode_spots(const uint8_t* data, size_t size, Header* header, std::vector<Spot>* out,
                         std::vector<uint8_t>* valid_symbol);

// Straight into spots the caller owns (e.g. each inside its Python object): spot_count() is
// the number of records of a batch whose root verifies (0 otherwise); decode_spots_into then
// verifies and reads record i into *out[i] (fields overwritten, the name appended to: pass
// default-constructed spots), for exactly that many.  valid_symbol (may be null, `count`
// flags) as decode_spots'.  On an error the spots are left partly written.
size_t spot_count(const uint8_t* data, size_t size);
DecodeError decode_spots_into(const uint8_t* data, size_t size, Header* header, Spot* const* out, size_t count,
                              uint8_t* valid_symbol);

// Columnar encoder input: n rows.  Symbols come as strings ("SH600000", "sh600000",
// "600000.SH") or as Symbol::key() values; one of the two must be given.  A null optional
// column encodes as 0 / absent.  Book columns are row-major n x book_levels matrices (any
// number of levels; trailing zero levels of a row are not written).
struct EncodeColumns {
  size_t n = 0;
  const std::string_view* symbols = nullptr;
  const uint32_t* symbol_keys = nullptr;
  const int64_t* datetime = nullptr;  // exchange-local ms (required)
  const double* close = nullptr;      // required
  const double* volume = nullptr;     // required
  const double* amount = nullptr;     // required
  const double* open = nullptr;
  const double* high = nullptr;
  const double* low = nullptr;
  const double* yesterday_close = nullptr;
  const std::string_view* name = nullptr;  // UTF-8; empty = absent
  size_t book_levels = 0;
  const double* bid = nullptr;
  const double* bid_volume = nullptr;
  const double* ask = nullptr;
  const double* ask_volume = nullptr;
  // A side may instead come row by row (a DataFrame's column of per-row arrays, no matrix
  // built): row i's levels are book_rows[k][i][0 .. book_counts[k][i]) for k = bid,
  // bid_volume, ask, ask_volume; used when that side's matrix above is null.  Rows of
  // different lengths are fine: a matrix pads them with 0, and trailing 0 levels are never
  // written, so both forms give the same bytes.
  const double* const* book_rows[4] = {nullptr, nullptr, nullptr, nullptr};
  const size_t* book_counts[4] = {nullptr, nullptr, nullptr, nullptr};
};

// A contiguous byte range owned by an Encoder.
struct ByteView {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

// Reusable encoder: keeps its FlatBufferBuilder's memory between messages.  The returned
// ByteView is valid until the next call or the Encoder's destruction.  Not thread-safe:
// one Encoder per thread.
class Encoder {
 public:
  Encoder();
  ~Encoder();
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  ByteView encode_spots(const Header& header, const Spot* const* spots, size_t n);
  // Throws std::invalid_argument for a missing required column, a missing or invalid symbol
  // (the message names the row).
  ByteView encode_columns(const Header& header, const EncodeColumns& columns);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One-shot forms (a fresh Encoder, the bytes copied out).
std::vector<uint8_t> encode_spots(const Header& header, const Spot* const* spots, size_t n);
std::vector<uint8_t> encode_columns(const Header& header, const EncodeColumns& columns);

// The largest spot datetime as UTC epoch ms (0 for no spots): market_time_ms of a one-part cycle.
int64_t max_epoch_ms(const Spot* const* spots, size_t n);

}  // namespace hkrt::wire
