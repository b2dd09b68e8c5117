#include "spot_agent/wire.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>

#include "schemas/spot_generated.h"

namespace hkrt::wire {

namespace fb = ::flatbuffers;
using Record = ::hkrt::wire::SpotRecord;
using Batch = ::hkrt::wire::SpotBatch;

static_assert(sizeof(kFileIdentifier) == 5, "a FlatBuffers file identifier has 4 characters");

const char* decode_error_name(DecodeError e) {
  switch (e) {
    case DecodeError::None: return "ok";
    case DecodeError::TooShort: return "too_short";
    case DecodeError::BadIdentifier: return "bad_identifier";
    case DecodeError::Malformed: return "malformed";
    case DecodeError::UnsupportedVersion: return "unsupported_version";
    case DecodeError::TooLarge: return "too_large";
  }
  return "unknown";
}

TimestampMs to_local_ms(int64_t epoch_ms) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  return epoch_ms > kMax - kChinaUtcOffsetMs ? kMax : epoch_ms + kChinaUtcOffsetMs;
}

int64_t to_epoch_ms(TimestampMs local_ms) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  return local_ms < kMin + kChinaUtcOffsetMs ? kMin : local_ms - kChinaUtcOffsetMs;
}

SpotColumns DecodedColumns::view() const {
  SpotColumns c;
  c.n = size();
  c.symbol_keys = symbol_keys.data();
  c.datetime = datetime.data();
  c.open = open.data();
  c.high = high.data();
  c.low = low.data();
  c.close = close.data();
  c.volume = volume.data();
  c.amount = amount.data();
  return c;
}

// ------------------------------------------------------------------------------ decoding
namespace {

// FlatBuffers reads scalars through typed pointers, so the buffer itself must be aligned
// for its largest scalar (8 bytes).  A misaligned view (e.g. a slice after a topic prefix)
// is decoded from an aligned copy.
class AlignedInput {
 public:
  AlignedInput(const uint8_t* data, size_t size) : data_(data) {
    if (data != nullptr && reinterpret_cast<uintptr_t>(data) % alignof(uint64_t) != 0) {
      copy_.resize((size + 7) / 8);
      std::memcpy(copy_.data(), data, size);
      data_ = reinterpret_cast<const uint8_t*>(copy_.data());
    }
  }
  const uint8_t* data() const { return data_; }

 private:
  const uint8_t* data_;
  std::vector<uint64_t> copy_;
};

fb::Verifier::Options verifier_options(size_t size) {
  fb::Verifier::Options opts;
  opts.max_depth = 8;  // batch -> header / spots vector -> spot: the schema is shallow
  // Every table takes at least 8 bytes, so this bounds nothing that size does not.
  opts.max_tables = static_cast<fb::uoffset_t>(std::min<size_t>(size / 4 + 16, 0x7FFFFFFF));
  return opts;
}

// The spot records, checked by hand with exactly the rules of flatbuffers::Verifier (and its
// default options: alignment checked, relative to the buffer's start) for this schema, so
// each record is verified and read in one visit instead of a verifier pass and a read pass.
// Positions are byte offsets from the buffer's start; every read is a memcpy (no typed
// pointer into the buffer).  The verifier's table-count limit cannot bind here: a vector of
// n offsets takes 4n bytes, so it holds fewer tables than the limit (size / 4 + 16).
class RecordReader {
 public:
  RecordReader(const uint8_t* buf, size_t size) : buf_(buf), size_(size) {}

  // flatbuffers::Verifier::Verify(elem, len)
  bool in(size_t elem, size_t len) const { return len < size_ && elem <= size_ - len; }
  template <class T>
  T read(size_t at) const {
    T v;
    std::memcpy(&v, buf_ + at, sizeof v);
    return v;
  }
  const uint8_t* at(size_t pos) const { return buf_ + pos; }

  // The table the offset at `elem` points to (Verifier::VerifyOffset, then VerifyTableStart):
  // false when malformed, else *table and its vtable.
  bool table(size_t elem, size_t* table, size_t* vtable, uint16_t* vsize) const {
    if ((elem & 3) != 0 || !in(elem, 4)) return false;
    const uint32_t o = read<uint32_t>(elem);
    if (o == 0 || static_cast<int32_t>(o) < 0 || !in(elem + o, 1)) return false;
    const size_t t = elem + o;
    if ((t & 3) != 0 || !in(t, 4)) return false;
    const size_t vt = t - static_cast<size_t>(static_cast<int64_t>(read<int32_t>(t)));
    if ((vt & 1) != 0 || !in(vt, 2)) return false;
    const uint16_t vs = read<uint16_t>(vt);
    if ((vs & 1) != 0 || !in(vt, vs)) return false;
    *table = t;
    *vtable = vt;
    *vsize = vs;
    return true;
  }
  // Table::GetOptionalFieldOffset
  uint16_t field(size_t vtable, uint16_t vsize, uint16_t id) const {
    return id < vsize ? read<uint16_t>(vtable + id) : 0;
  }
  // An offset field to a string or a vector of `elem_size`-byte scalars: Verifier::VerifyOffset
  // then VerifyVectorOrString (and the terminator of a string).  *pos = the length field
  // (0: absent), *count = the elements.
  bool vector(size_t table, uint16_t fo, size_t elem_size, bool string, size_t* pos, uint32_t* count) const {
    *pos = 0;
    *count = 0;
    if (fo == 0) return true;
    const size_t start = table + fo;
    if ((start & 3) != 0 || !in(start, 4)) return false;
    const uint32_t o = read<uint32_t>(start);
    if (o == 0 || static_cast<int32_t>(o) < 0 || !in(start + o, 1)) return false;
    const size_t v = start + o;
    if ((v & 3) != 0 || !in(v, 4)) return false;
    const uint32_t n = read<uint32_t>(v);
    if (n >= static_cast<size_t>(FLATBUFFERS_MAX_BUFFER_SIZE) / elem_size) return false;
    const size_t bytes = 4 + elem_size * n;
    if (!in(v, bytes)) return false;
    if (string && (!in(v + bytes, 1) || buf_[v + bytes] != 0)) return false;
    *pos = v;
    *count = n;
    return true;
  }
  // An 8-byte scalar or struct field (Verifier::VerifyField, alignment 8).
  bool scalar8(size_t table, uint16_t fo) const {
    const size_t f = table + fo;
    return fo == 0 || ((f & 7) == 0 && in(f, 8));
  }

 private:
  const uint8_t* buf_;
  size_t size_;
};

// One record's fields, verified; positions as RecordReader's (0 = absent).
struct RecordView {
  // The vtable `fields` were read from: records of one batch share a vtable (the builder writes
  // each distinct one once), so a record with the same one skips reading it again.
  size_t vtable = ~size_t{0};
  size_t table;
  uint16_t fields[15];  // vtable offsets of the 15 SpotRecord fields in schema order, 0 = absent
  size_t market, code, name;  // string length fields
  uint32_t market_len, code_len, name_len;
  size_t book[4];  // bid, bid_volume, ask, ask_volume length fields
  uint32_t book_len[4];
};

constexpr uint16_t kFieldIds[15] = {Record::VT_MARKET,  Record::VT_CODE,   Record::VT_NAME,       Record::VT_DATETIME,
                                    Record::VT_YESTERDAY_CLOSE, Record::VT_OPEN, Record::VT_HIGH, Record::VT_LOW,
                                    Record::VT_CLOSE,   Record::VT_AMOUNT, Record::VT_VOLUME,     Record::VT_BID,
                                    Record::VT_BID_VOLUME, Record::VT_ASK, Record::VT_ASK_VOLUME};
enum FieldIndex { kMarket, kCode, kName, kDatetime, kYesterdayClose, kOpen, kHigh, kLow, kClose, kAmount, kVolume,
                  kBid, kBidVolume, kAsk, kAskVolume };

// Verifies the record whose offset is at `elem` (SpotRecord::Verify's checks) and fills *r
// (reuse one RecordView over a batch: it remembers the last vtable).
bool verify_record(const RecordReader& rr, size_t elem, RecordView* r) {
  size_t vt;
  uint16_t vs;
  if (!rr.table(elem, &r->table, &vt, &vs)) return false;
  if (vt != r->vtable) {
    for (int f = 0; f < 15; ++f) r->fields[f] = rr.field(vt, vs, kFieldIds[f]);
    r->vtable = vt;
  }
  const size_t t = r->table;
  if (r->fields[kMarket] == 0 || !rr.vector(t, r->fields[kMarket], 1, true, &r->market, &r->market_len)) return false;
  if (r->fields[kCode] == 0 || !rr.vector(t, r->fields[kCode], 1, true, &r->code, &r->code_len)) return false;
  if (!rr.vector(t, r->fields[kName], 1, true, &r->name, &r->name_len)) return false;
  if (r->fields[kDatetime] == 0 || !rr.scalar8(t, r->fields[kDatetime])) return false;
  for (int f = kYesterdayClose; f <= kVolume; ++f)
    if (!rr.scalar8(t, r->fields[f])) return false;
  for (int k = 0; k < 4; ++k)
    if (!rr.vector(t, r->fields[kBid + k], sizeof(double), false, &r->book[k], &r->book_len[k])) return false;
  return true;
}

double number(const RecordReader& rr, const RecordView& r, int f) {
  return r.fields[f] == 0 ? 0.0 : rr.read<double>(r.table + r.fields[f]);
}

// Market and code as the engine's dense key; kInvalidSymbolKey unless SH/SZ/BJ + six digits.
uint32_t symbol_key(const RecordReader& rr, const RecordView& r) {
  if (r.market_len != 2 || r.code_len != 6) return kInvalidSymbolKey;
  const char* m = reinterpret_cast<const char*>(rr.at(r.market + 4));
  std::optional<Market> market;
  if (m[0] == 'S' && m[1] == 'H') market = Market::SH;  // the spellings publishers send, before the general rule
  else if (m[0] == 'S' && m[1] == 'Z') market = Market::SZ;
  else if (m[0] == 'B' && m[1] == 'J') market = Market::BJ;
  else market = parse_market(std::string_view(m, 2));
  if (!market) return kInvalidSymbolKey;
  const uint8_t* c = rr.at(r.code + 4);
  uint32_t value = 0;
  for (int i = 0; i < 6; ++i) {
    const uint32_t d = static_cast<uint32_t>(c[i]) - '0';
    if (d > 9) return kInvalidSymbolKey;
    value = value * 10 + d;
  }
  return static_cast<uint32_t>(*market) * kCodesPerMarket + value;
}

// symbol_key through a cache row (see SymbolCache).
uint32_t cached_symbol_key(const RecordReader& rr, const RecordView& r, SymbolCache::Row* row, SymbolCache* cache) {
  if (r.market_len != 2 || r.code_len != 6) return kInvalidSymbolKey;
  uint64_t bytes;
  std::memcpy(&bytes, rr.at(r.market + 4), 2);
  std::memcpy(reinterpret_cast<char*>(&bytes) + 2, rr.at(r.code + 4), 6);
  if (row->bytes == bytes) {
    ++cache->hits;
    return row->key;
  }
  ++cache->misses;
  row->bytes = bytes;
  row->key = symbol_key(rr, r);
  return row->key;
}

// The checks of verify() up to the spot records; on success *root is the batch (its records
// not yet verified: verify_records does that, or the decoders record by record).
DecodeError verify_root(const uint8_t* data, size_t size, const Batch** root) {
  if (data == nullptr || size < kMinMessageSize) return DecodeError::TooShort;
  if (!fb::BufferHasIdentifier(data, SpotBatchIdentifier())) return DecodeError::BadIdentifier;
  if (size >= FLATBUFFERS_MAX_BUFFER_SIZE) return DecodeError::Malformed;
  fb::Verifier v(data, size, verifier_options(size));
  if (size < FLATBUFFERS_MIN_BUFFER_SIZE) return DecodeError::Malformed;
  const size_t offset = v.VerifyOffset<fb::uoffset_t>(0);
  if (offset == 0) return DecodeError::Malformed;
  const auto* table = reinterpret_cast<const fb::Table*>(data + offset);
  if (!table->VerifyTableStart(v) || !table->VerifyOffsetRequired(v, Batch::VT_HEADER)) return DecodeError::Malformed;
  // The version first, from a verified header only, so that a batch of a later version is
  // reported as such even when the rest of it would not verify against this schema.
  const auto* header = table->GetPointer<const BatchHeader*>(Batch::VT_HEADER);
  if (!v.VerifyTable(header)) return DecodeError::Malformed;
  const uint16_t version = header->schema_version();
  if (version == 0 || version > kSchemaVersion) return DecodeError::UnsupportedVersion;
  if (!table->VerifyOffsetRequired(v, Batch::VT_SPOTS)) return DecodeError::Malformed;
  const auto* spots = table->GetPointer<const fb::Vector<fb::Offset<Record>>*>(Batch::VT_SPOTS);
  if (!v.VerifyVector(spots) || !v.EndTable()) return DecodeError::Malformed;
  *root = reinterpret_cast<const Batch*>(table);
  return DecodeError::None;
}

// Position of the spots vector's first element (its offsets), relative to the buffer.
size_t spots_begin(const uint8_t* data, const Batch* root) {
  return static_cast<size_t>(reinterpret_cast<const uint8_t*>(root->spots()->Data()) - data);
}

DecodeError verify_batch(const uint8_t* data, size_t size, const Batch** root) {
  const DecodeError err = verify_root(data, size, root);
  if (err != DecodeError::None) return err;
  const RecordReader rr(data, size);
  const size_t first = spots_begin(data, *root), n = (*root)->spots()->size();
  RecordView r;
  for (size_t i = 0; i < n; ++i)
    if (!verify_record(rr, first + 4 * i, &r)) return DecodeError::Malformed;
  return DecodeError::None;
}

void read_header(const BatchHeader& h, Header* out) {
  out->schema_version = h.schema_version();
  out->publisher_id = h.publisher_id();
  out->sequence = h.sequence();
  out->cycle_id = h.cycle_id();
  out->part_index = h.part_index();
  out->part_count = h.part_count();
  out->send_time_us = h.send_time_us();
  out->market_time_ms = h.market_time_ms();
  out->session_epoch = h.session_epoch();
  out->heartbeat = h.heartbeat();
  out->simulated_time = h.simulated_time();
  out->day_end = h.day_end();
  out->changes_only = h.changes_only();
}

// Length of the valid UTF-8 sequence at p[0..n), or 0 if it is not one.
size_t utf8_sequence(const unsigned char* p, size_t n) {
  const unsigned char c = p[0];
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
  else return 0;
  if (len > n) return 0;
  for (size_t i = 1; i < len; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
    return 0;
  return len;
}

// Appends the name as valid UTF-8: each byte that does not start a valid sequence becomes U+FFFD.
void append_name(const unsigned char* p, size_t n, std::string* out) {
  size_t i = 0;
  while (i < n && p[i] < 0x80) ++i;
  out->append(reinterpret_cast<const char*>(p), i);
  while (i < n) {
    const size_t len = utf8_sequence(p + i, n - i);
    if (len == 0) {
      out->append("\xEF\xBF\xBD");
      ++i;
    } else {
      out->append(reinterpret_cast<const char*>(p + i), len);
      i += len;
    }
  }
}

// Book levels: longer vectors truncated to kBookLevels, shorter ones padded with 0.  The
// verifier aligns a vector's length field to 4 bytes only, so 8-byte elements may be
// misaligned in a hostile buffer: memcpy, never a double*.
void read_levels(const RecordReader& rr, size_t pos, uint32_t count, double* out) {
  const size_t n = std::min<size_t>(count, kBookLevels);
  if (n > 0) std::memcpy(out, rr.at(pos + 4), n * sizeof(double));
  for (size_t k = n; k < static_cast<size_t>(kBookLevels); ++k) out[k] = 0.0;
}

}  // namespace

DecodeError verify(const uint8_t* data, size_t size) {
  AlignedInput in(data, size);
  const Batch* root = nullptr;
  return verify_batch(in.data(), size, &root);
}

DecodeError decode_header(const uint8_t* data, size_t size, Header* out) {
  AlignedInput in(data, size);
  const Batch* root = nullptr;
  const DecodeError err = verify_batch(in.data(), size, &root);
  if (err == DecodeError::None && out != nullptr) read_header(*root->header(), out);
  return err;
}

SymbolCache::Row* SymbolCache::rows(uint64_t publisher_id, uint64_t session_epoch, uint32_t part_index, size_t n) {
  if (n > max_rows_ || n == 0) return nullptr;
  Slot& slot = slots_[Key{publisher_id, session_epoch, part_index}];
  slot.used = ++clock_;
  if (slot.rows.size() != n) {
    total_ = total_ - slot.rows.size() + n;
    slot.rows.assign(n, Row());
    while (total_ > max_rows_) {  // the least recently used other slot goes first
      auto oldest = slots_.end();
      for (auto it = slots_.begin(); it != slots_.end(); ++it)
        if (it->second.used != clock_ && (oldest == slots_.end() || it->second.used < oldest->second.used)) oldest = it;
      if (oldest == slots_.end()) break;
      total_ -= oldest->second.rows.size();
      slots_.erase(oldest);
    }
  }
  return slot.rows.data();
}

DecodeError decode_columns(const uint8_t* data, size_t size, Header* header, DecodedColumns* out, bool details,
                           SymbolCache* symbols) {
  AlignedInput in(data, size);
  const Batch* root = nullptr;
  DecodeError err = verify_root(in.data(), size, &root);
  const size_t n = err == DecodeError::None ? root->spots()->size() : 0;
  if (out == nullptr) {  // nothing to fill: verify the records
    if (err == DecodeError::None) err = verify_batch(in.data(), size, &root);
    if (err == DecodeError::None && header != nullptr) read_header(*root->header(), header);
    return err;
  }
  // resize (to 0 on an error) keeps the capacity
  for (auto* v : {&out->open, &out->high, &out->low, &out->close, &out->volume, &out->amount}) v->resize(n);
  out->symbol_keys.resize(n);
  out->datetime.resize(n);
  out->has_details = details;
  const size_t book = details ? n * kBookLevels : 0;
  out->yesterday_close.resize(details ? n : 0);
  for (auto* v : {&out->bid, &out->bid_volume, &out->ask, &out->ask_volume}) v->resize(book);
  out->name_end.resize(details ? n : 0);
  out->names.clear();
  if (err != DecodeError::None) return err;
  const RecordReader rr(in.data(), size);
  const size_t first = spots_begin(in.data(), root);
  SymbolCache::Row* cached = nullptr;
  if (symbols != nullptr) {
    const BatchHeader* h = root->header();
    cached = symbols->rows(h->publisher_id(), h->session_epoch(), h->part_index(), n);
  }
  RecordView r;
  for (size_t i = 0; i < n; ++i) {
    if (!verify_record(rr, first + 4 * i, &r)) {
      for (auto* v : {&out->open, &out->high, &out->low, &out->close, &out->volume, &out->amount}) v->clear();
      for (auto* v : {&out->yesterday_close, &out->bid, &out->bid_volume, &out->ask, &out->ask_volume}) v->clear();
      out->symbol_keys.clear();
      out->datetime.clear();
      out->name_end.clear();
      out->names.clear();
      return DecodeError::Malformed;
    }
    out->symbol_keys[i] = cached != nullptr ? cached_symbol_key(rr, r, &cached[i], symbols) : symbol_key(rr, r);
    out->datetime[i] = to_local_ms(rr.read<int64_t>(r.table + r.fields[kDatetime]));
    out->open[i] = number(rr, r, kOpen);
    out->high[i] = number(rr, r, kHigh);
    out->low[i] = number(rr, r, kLow);
    out->close[i] = number(rr, r, kClose);
    out->volume[i] = number(rr, r, kVolume);
    out->amount[i] = number(rr, r, kAmount);
    if (details) {
      out->yesterday_close[i] = number(rr, r, kYesterdayClose);
      read_levels(rr, r.book[0], r.book_len[0], &out->bid[i * kBookLevels]);
      read_levels(rr, r.book[1], r.book_len[1], &out->bid_volume[i * kBookLevels]);
      read_levels(rr, r.book[2], r.book_len[2], &out->ask[i * kBookLevels]);
      read_levels(rr, r.book[3], r.book_len[3], &out->ask_volume[i * kBookLevels]);
      if (r.name != 0) append_name(rr.at(r.name + 4), r.name_len, &out->names);
      out->name_end[i] = static_cast<uint32_t>(out->names.size());
    }
  }
  if (header != nullptr) read_header(*root->header(), header);
  return err;
}

Spot DecodedColumns::spot(size_t i) const {
  Spot s;
  if (symbol_keys[i] != kInvalidSymbolKey) s.symbol = Symbol::from_key(symbol_keys[i]);
  s.datetime = datetime[i];
  s.open = open[i];
  s.high = high[i];
  s.low = low[i];
  s.close = close[i];
  s.volume = volume[i];
  s.amount = amount[i];
  if (has_details) {
    s.name = std::string(name(i));
    s.yesterday_close = yesterday_close[i];
    const size_t b = i * kBookLevels;
    std::copy_n(&bid[b], kBookLevels, s.bid.begin());
    std::copy_n(&bid_volume[b], kBookLevels, s.bid_volume.begin());
    std::copy_n(&ask[b], kBookLevels, s.ask.begin());
    std::copy_n(&ask_volume[b], kBookLevels, s.ask_volume.begin());
  }
  return s;
}

namespace {
// Verify + read every record of a verified root into spot_at(i) (null: verify only);
// valid_symbol[i] = 0 for an invalid market/code.  Malformed at the first bad record.
template <typename SpotAt>
DecodeError read_spots(const uint8_t* data, size_t size, const Batch* root, size_t n, SpotAt spot_at,
                       uint8_t* valid_symbol) {
  const RecordReader rr(data, size);
  const size_t first = spots_begin(data, root);
  RecordView r;
  for (size_t i = 0; i < n; ++i) {
    if (!verify_record(rr, first + 4 * i, &r)) return DecodeError::Malformed;
    Spot* out = spot_at(i);
    if (out == nullptr) continue;
    Spot& s = *out;
    const uint32_t key = symbol_key(rr, r);
    if (key == kInvalidSymbolKey) {
      if (valid_symbol != nullptr) valid_symbol[i] = 0;
    } else {
      s.symbol = Symbol::from_key(key);
    }
    if (r.name != 0) append_name(rr.at(r.name + 4), r.name_len, &s.name);
    s.datetime = to_local_ms(rr.read<int64_t>(r.table + r.fields[kDatetime]));
    s.yesterday_close = number(rr, r, kYesterdayClose);
    s.open = number(rr, r, kOpen);
    s.high = number(rr, r, kHigh);
    s.low = number(rr, r, kLow);
    s.close = number(rr, r, kClose);
    s.amount = number(rr, r, kAmount);
    s.volume = number(rr, r, kVolume);
    read_levels(rr, r.book[0], r.book_len[0], s.bid.data());
    read_levels(rr, r.book[1], r.book_len[1], s.bid_volume.data());
    read_levels(rr, r.book[2], r.book_len[2], s.ask.data());
    read_levels(rr, r.book[3], r.book_len[3], s.ask_volume.data());
  }
  return DecodeError::None;
}
}  // namespace

DecodeError decode_spots(const uint8_t* data, size_t size, Header* header, std::vector<Spot>* out,
                         std::vector<uint8_t>* valid_symbol) {
  AlignedInput in(data, size);
  const Batch* root = nullptr;
  DecodeError err = verify_root(in.data(), size, &root);
  const size_t n = err == DecodeError::None ? root->spots()->size() : 0;
  if (out != nullptr) {
    out->clear();
    out->resize(n);
  }
  if (valid_symbol != nullptr) valid_symbol->assign(n, 1);
  if (err == DecodeError::None)
    err = read_spots(
        in.data(), size, root, n, [out](size_t i) { return out != nullptr ? &(*out)[i] : nullptr; },
        valid_symbol != nullptr ? valid_symbol->data() : nullptr);
  if (err != DecodeError::None) {
    if (out != nullptr) out->clear();
    if (valid_symbol != nullptr) valid_symbol->clear();
    return err;
  }
  if (header != nullptr) read_header(*root->header(), header);
  return err;
}

size_t spot_count(const uint8_t* data, size_t size) {
  AlignedInput in(data, size);
  const Batch* root = nullptr;
  return verify_root(in.data(), size, &root) == DecodeError::None ? root->spots()->size() : 0;
}

DecodeError decode_spots_into(const uint8_t* data, size_t size, Header* header, Spot* const* out, size_t count,
                              uint8_t* valid_symbol) {
  AlignedInput in(data, size);
  const Batch* root = nullptr;
  DecodeError err = verify_root(in.data(), size, &root);
  if (err != DecodeError::None) return err;
  if (root->spots()->size() != count) return DecodeError::Malformed;
  if (valid_symbol != nullptr) std::fill_n(valid_symbol, count, uint8_t{1});
  err = read_spots(in.data(), size, root, count, [out](size_t i) { return out[i]; }, valid_symbol);
  if (err == DecodeError::None && header != nullptr) read_header(*root->header(), header);
  return err;
}

// ------------------------------------------------------------------------------ encoding
namespace {

constexpr size_t kBytesPerSpotEstimate = 320;  // a full spot with a 5-level book and a name

// Levels actually written: trailing zero levels are left out (they decode as 0).
size_t used_levels(const double* levels, size_t n) {
  while (n > 0 && levels[n - 1] == 0.0) --n;
  return n;
}

// "SH600000" as the codec itself writes it (upper-case market, six digits) without the
// general parser's case folding and other spellings; anything else is left to parse_symbol.
std::optional<Symbol> canonical_symbol(std::string_view t) {
  if (t.size() != 8) return std::nullopt;
  Market m;
  if (t[0] == 'S' && t[1] == 'H') m = Market::SH;
  else if (t[0] == 'S' && t[1] == 'Z') m = Market::SZ;
  else if (t[0] == 'B' && t[1] == 'J') m = Market::BJ;
  else return std::nullopt;
  uint32_t code = 0;
  for (size_t k = 2; k < 8; ++k) {
    const unsigned digit = static_cast<unsigned char>(t[k]) - unsigned{'0'};
    if (digit > 9) return std::nullopt;
    code = code * 10 + digit;
  }
  return Symbol{m, code};
}

void code_digits(uint32_t code, char out[6]) {
  for (int i = 5; i >= 0; --i) {
    out[i] = static_cast<char>('0' + code % 10);
    code /= 10;
  }
}

}  // namespace

// The FlatBufferBuilder with one fast operation: a whole SpotRecord (code and name strings,
// book vectors, the table and its vtable) laid out back to front in a scratch block and
// pushed with one copy, instead of ~25 builder calls that each check for space and record
// field locations.  The bytes are exactly those of the generic calls (CreateString,
// CreateVector, then SpotRecordBuilder adding datetime, the seven numbers, market, code,
// name and the book, EndTable sharing an identical earlier vtable): every padding is computed
// from the buffer size the builder would have at that point, and vtables are shared through
// the builder's own list.  cpp/tests/test_wire.cpp holds the two equal on random records.
class SpotBuilder : public fb::FlatBufferBuilder {
 public:
  explicit SpotBuilder(size_t initial = 1024) : fb::FlatBufferBuilder(initial) {}

  struct Record {
    fb::uoffset_t market;  // offset of the shared market string
    char code[6];
    const char* name;  // empty = absent
    size_t name_size;
    int64_t epoch_ms;
    double yesterday_close, open, high, low, close, amount, volume;
    const double* book[4];  // bid, bid_volume, ask, ask_volume (null = absent)
    size_t book_size[4];
  };

  fb::uoffset_t add_record(const Record& r) {
    size_t bound = 256 + r.name_size;  // strings, table, vtable and every padding, with room to spare
    for (size_t k = 0; k < 4; ++k) bound += 16 + 8 * r.book_size[k];
    size_t size = GetSize();  // the builder's size as each write would see it
    // Written straight into the builder's buffer, from the top of `bound` reserved bytes down;
    // the unused bottom is given back at the end.
    uint8_t* const bottom = buf_.make_space(bound);
    uint8_t* const end = bottom + bound;
    uint8_t* cur = end;
    auto fill = [&](size_t n) {
      cur -= n;
      for (size_t i = 0; i < n; ++i) cur[i] = 0;  // a few bytes of padding: no call
      size += n;
    };
    auto push = [&](const void* p, size_t n) {
      cur -= n;
      std::memcpy(cur, p, n);
      size += n;
    };
    auto align = [&](size_t a) { fill(fb::PaddingBytes(size, a)); };
    auto push_u32 = [&](uint32_t v) {
      align(sizeof v);
      push(&v, sizeof v);
      return static_cast<fb::uoffset_t>(size);
    };
    auto string = [&](const char* p, size_t n) {  // CreateString
      fill(fb::PaddingBytes(size + n + 1, sizeof(fb::uoffset_t)));
      fill(1);
      push(p, n);
      return push_u32(static_cast<uint32_t>(n));
    };
    auto vector = [&](const double* v, size_t n) -> fb::uoffset_t {  // CreateVector<double>
      if (v == nullptr || n == 0) return 0;
      fill(fb::PaddingBytes(size + n * sizeof(double), sizeof(fb::uoffset_t)));
      fill(fb::PaddingBytes(size + n * sizeof(double), sizeof(double)));
      push(v, n * sizeof(double));
      return push_u32(static_cast<uint32_t>(n));
    };
    TrackMinAlign(sizeof(double));  // the datetime struct below aligns to 8 in every record
    const fb::uoffset_t code = string(r.code, 6);
    const fb::uoffset_t name = r.name_size == 0 ? 0 : string(r.name, r.name_size);
    fb::uoffset_t book[4];
    for (size_t k = 0; k < 4; ++k) book[k] = vector(r.book[k], r.book_size[k]);

    // The table (StartTable .. EndTable).
    const size_t start = size;
    struct Field {
      size_t at;
      fb::voffset_t id;
    };
    Field fields[15];
    size_t count = 0;
    fb::voffset_t max_id = 0;
    auto track = [&](fb::voffset_t id) {
      fields[count++] = Field{size, id};
      max_id = std::max(max_id, id);
    };
    align(alignof(Timestamp));
    const Timestamp ts(r.epoch_ms);
    push(&ts, sizeof ts);
    track(Record_::VT_DATETIME);
    auto number = [&](fb::voffset_t id, double v) {
      if (fb::IsTheSameAs(v, 0.0)) return;  // a default is not stored
      align(sizeof v);
      push(&v, sizeof v);
      track(id);
    };
    number(Record_::VT_YESTERDAY_CLOSE, r.yesterday_close);
    number(Record_::VT_OPEN, r.open);
    number(Record_::VT_HIGH, r.high);
    number(Record_::VT_LOW, r.low);
    number(Record_::VT_CLOSE, r.close);
    number(Record_::VT_AMOUNT, r.amount);
    number(Record_::VT_VOLUME, r.volume);
    auto offset = [&](fb::voffset_t id, fb::uoffset_t target) {
      if (target == 0) return;
      align(sizeof(fb::uoffset_t));
      push_u32(static_cast<uint32_t>(size - target + sizeof(fb::uoffset_t)));
      track(id);
    };
    offset(Record_::VT_MARKET, r.market);
    offset(Record_::VT_CODE, code);
    offset(Record_::VT_NAME, name);
    offset(Record_::VT_BID, book[0]);
    offset(Record_::VT_BID_VOLUME, book[1]);
    offset(Record_::VT_ASK, book[2]);
    offset(Record_::VT_ASK_VOLUME, book[3]);
    const fb::uoffset_t table = push_u32(0);  // the vtable offset, filled below
    uint8_t* const table_at = cur;
    const auto vtable_size =
        std::max(static_cast<fb::voffset_t>(max_id + sizeof(fb::voffset_t)), fb::FieldIndexToOffset(0));
    fill(vtable_size);
    auto put16 = [&](size_t at, size_t v) {
      const auto x = static_cast<fb::voffset_t>(v);
      std::memcpy(cur + at, &x, sizeof x);
    };
    put16(0, vtable_size);
    put16(sizeof(fb::voffset_t), table - start);
    for (size_t i = 0; i < count; ++i) put16(fields[i].id, table - fields[i].at);
    // Share an identical vtable written before (the builder's list holds each vtable once, so
    // whichever is checked first, the match is the same).
    const auto* vtables = reinterpret_cast<const fb::uoffset_t*>(buf_.scratch_data());
    const size_t known = (buf_.scratch_end() - buf_.scratch_data()) / sizeof(fb::uoffset_t);
    fb::uoffset_t vtable = 0;
    auto same = [&](size_t i) {
      const uint8_t* other = buf_.data_at(vtables[i]);
      return fb::ReadScalar<fb::voffset_t>(other) == vtable_size && std::memcmp(other, cur, vtable_size) == 0;
    };
    if (last_vtable_ < known && same(last_vtable_)) {
      vtable = vtables[last_vtable_];
    } else {
      for (size_t i = 0; i < known; ++i) {
        if (same(i)) {
          vtable = vtables[i];
          last_vtable_ = i;
          break;
        }
      }
    }
    if (vtable != 0) {
      cur += vtable_size;  // dropped: the table refers to the earlier one
      size -= vtable_size;
    } else {
      vtable = static_cast<fb::uoffset_t>(size);
    }
    const auto to_vtable = static_cast<fb::soffset_t>(vtable) - static_cast<fb::soffset_t>(table);
    std::memcpy(table_at, &to_vtable, sizeof to_vtable);
    buf_.pop(static_cast<size_t>(cur - bottom));
    if (vtable == size) {
      last_vtable_ = known;
      buf_.scratch_push_small(vtable);
    }
    return table;
  }

 private:
  using Record_ = ::hkrt::wire::SpotRecord;
  size_t last_vtable_ = 0;  // index of the vtable the previous record shared or wrote
};

struct Encoder::Impl {
  SpotBuilder fbb{1 << 16};
  std::vector<fb::Offset<Record>> records;
  std::array<fb::Offset<fb::String>, kMarketCount> markets{};

  size_t reserved = 0;  // bytes the builder's buffer was sized for

  // Starts a message of n spots: one up-front reservation (the builder otherwise grows by
  // doubling and copying), kept for the next message.
  void begin(size_t n) {
    const size_t estimate = 1024 + n * kBytesPerSpotEstimate;
    if (estimate > reserved) {
      fbb = SpotBuilder(estimate);
      reserved = estimate;
    } else {
      fbb.Clear();
    }
    records.clear();
    records.reserve(n);
    markets.fill(fb::Offset<fb::String>());
  }

  fb::Offset<fb::String> market(Market m) {
    auto& off = markets[static_cast<size_t>(m)];
    if (off.IsNull()) off = fbb.CreateSharedString(market_name(m), 2);
    return off;
  }

  struct Row {
    Symbol symbol;
    const char* name;
    size_t name_size;
    TimestampMs datetime;
    double yesterday_close, open, high, low, close, amount, volume;
    const double* book[4];  // bid, bid_volume, ask, ask_volume (null = none)
    size_t levels[4];
  };

  void add(const Row& r) {
    SpotBuilder::Record rec;
    rec.market = market(r.symbol.market).o;
    code_digits(r.symbol.code, rec.code);
    rec.name = r.name;
    rec.name_size = r.name_size;
    rec.epoch_ms = to_epoch_ms(r.datetime);
    rec.yesterday_close = r.yesterday_close;
    rec.open = r.open;
    rec.high = r.high;
    rec.low = r.low;
    rec.close = r.close;
    rec.amount = r.amount;
    rec.volume = r.volume;
    for (size_t k = 0; k < 4; ++k) {
      rec.book[k] = r.book[k];
      rec.book_size[k] = r.book[k] == nullptr ? 0 : used_levels(r.book[k], r.levels[k]);  // trailing 0s left out
    }
    records.push_back(fb::Offset<Record>(fbb.add_record(rec)));
  }

  ByteView finish(const Header& h) {
    reserved = std::max(reserved, static_cast<size_t>(fbb.GetSize()) + 1024);
    const auto spots = fbb.CreateVector(records);
    const int64_t sent = h.send_time_us != kSendTimeNow
                             ? h.send_time_us
                             : std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
    const auto header = CreateBatchHeader(fbb, h.schema_version, h.publisher_id, h.sequence, h.cycle_id, h.part_index,
                                          h.part_count, sent, h.market_time_ms, h.session_epoch, h.heartbeat,
                                          h.simulated_time, h.day_end, h.changes_only);
    FinishSpotBatchBuffer(fbb, CreateSpotBatch(fbb, header, spots));
    return ByteView{fbb.GetBufferPointer(), fbb.GetSize()};
  }
};

Encoder::Encoder() : impl_(std::make_unique<Impl>()) {}
Encoder::~Encoder() = default;

ByteView Encoder::encode_spots(const Header& header, const Spot* const* spots, size_t n) {
  Impl& e = *impl_;
  e.begin(n);
  for (size_t i = 0; i < n; ++i) {
    const Spot& s = *spots[i];
    constexpr auto L = static_cast<size_t>(kBookLevels);
    e.add(Impl::Row{s.symbol, s.name.data(), s.name.size(), s.datetime, s.yesterday_close, s.open, s.high, s.low,
                    s.close, s.amount, s.volume,
                    {s.bid.data(), s.bid_volume.data(), s.ask.data(), s.ask_volume.data()}, {L, L, L, L}});
  }
  return e.finish(header);
}

ByteView Encoder::encode_columns(const Header& header, const EncodeColumns& c) {
  if (c.n > 0) {
    if (c.symbols == nullptr && c.symbol_keys == nullptr)
      throw std::invalid_argument("encode_columns: a symbol column (strings or keys) is required");
    if (c.datetime == nullptr || c.close == nullptr || c.volume == nullptr || c.amount == nullptr)
      throw std::invalid_argument("encode_columns: datetime, close, volume and amount are required");
    if ((c.bid || c.bid_volume || c.ask || c.ask_volume) && c.book_levels == 0)
      throw std::invalid_argument("encode_columns: book columns given with book_levels == 0");
  }
  Impl& e = *impl_;
  e.begin(c.n);
  const size_t L = c.book_levels;
  const double* const matrices[4] = {c.bid, c.bid_volume, c.ask, c.ask_volume};
  for (size_t i = 0; i < c.n; ++i) {
    Symbol symbol;
    if (c.symbols != nullptr) {
      auto parsed = canonical_symbol(c.symbols[i]);
      if (!parsed) parsed = parse_symbol(c.symbols[i]);
      if (!parsed)
        throw std::invalid_argument("encode_columns: row " + std::to_string(i) + ": invalid symbol '" +
                                    std::string(c.symbols[i]) +
                                    "': expected a market SH/SZ/BJ and a six-digit code (SH600000, 600000.SH)");
      symbol = *parsed;
    } else {
      const uint32_t key = c.symbol_keys[i];
      if (key >= kMarketCount * kCodesPerMarket)
        throw std::invalid_argument("encode_columns: row " + std::to_string(i) + ": invalid symbol key " +
                                    std::to_string(key));
      symbol = Symbol::from_key(key);
    }
    const std::string_view name = c.name != nullptr ? c.name[i] : std::string_view();
    auto opt = [i](const double* col) { return col != nullptr ? col[i] : 0.0; };
    Impl::Row row{symbol, name.data(), name.size(), c.datetime[i], opt(c.yesterday_close), opt(c.open),
                  opt(c.high), opt(c.low), c.close[i], c.amount[i], c.volume[i], {}, {}};
    for (size_t k = 0; k < 4; ++k) {
      if (matrices[k] != nullptr) {
        row.book[k] = matrices[k] + i * L;
        row.levels[k] = L;
      } else if (c.book_rows[k] != nullptr) {
        row.book[k] = c.book_rows[k][i];
        row.levels[k] = row.book[k] == nullptr ? 0 : c.book_counts[k][i];
      }
    }
    e.add(row);
  }
  return e.finish(header);
}

std::vector<uint8_t> encode_spots(const Header& header, const Spot* const* spots, size_t n) {
  Encoder encoder;
  const ByteView v = encoder.encode_spots(header, spots, n);
  return std::vector<uint8_t>(v.data, v.data + v.size);
}

std::vector<uint8_t> encode_columns(const Header& header, const EncodeColumns& columns) {
  Encoder encoder;
  const ByteView v = encoder.encode_columns(header, columns);
  return std::vector<uint8_t>(v.data, v.data + v.size);
}

int64_t max_epoch_ms(const Spot* const* spots, size_t n) {
  if (n == 0) return 0;
  TimestampMs best = spots[0]->datetime;
  for (size_t i = 1; i < n; ++i) best = std::max(best, spots[i]->datetime);
  return to_epoch_ms(best);
}

}  // namespace hkrt::wire
