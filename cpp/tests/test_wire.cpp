// The spot wire format: round trips, every reject reason, and hostile input.
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "schemas/spot_generated.h"
#include "spot_agent/wire.h"

using namespace hkrt;
using hkrt::wire::DecodeError;

namespace {

Spot full_spot() {
  Spot s;
  s.symbol = *parse_symbol("SH600000");
  s.name = "浦发银行";
  s.datetime = make_timestamp(2026, 11, 20, 9, 30, 5, 250);
  s.yesterday_close = 9.87;
  s.open = 9.9;
  s.high = 10.2;
  s.low = 9.85;
  s.close = 10.1;
  s.amount = 123456789.5;
  s.volume = 12345600;
  s.bid = {10.09, 10.08, 10.07, 10.06, 10.05};
  s.bid_volume = {100, 200, 300, 400, 500};
  s.ask = {10.1, 10.11, 10.12, 10.13, 10.14};
  s.ask_volume = {1100, 1200, 1300, 1400, 0};
  return s;
}

wire::Header full_header() {
  wire::Header h;
  h.publisher_id = 0xDEADBEEFCAFEF00Dull;
  h.sequence = 42;
  h.cycle_id = 7;
  h.part_index = 2;
  h.part_count = 3;
  h.send_time_us = 1795138205123456;  // 2026-11-20 01:30:05.123456 UTC
  h.market_time_ms = 1795138205000;
  h.session_epoch = 1795130000000001;
  h.simulated_time = true;
  return h;
}

std::vector<uint8_t> encode(const std::vector<Spot>& spots, const wire::Header& h = full_header()) {
  std::vector<const Spot*> ptrs;
  for (const Spot& s : spots) ptrs.push_back(&s);
  return wire::encode_spots(h, ptrs.data(), ptrs.size());
}

bool same_spot(const Spot& a, const Spot& b) {
  bool eq = a.symbol == b.symbol && a.name == b.name && a.datetime == b.datetime &&
            a.yesterday_close == b.yesterday_close && a.open == b.open && a.high == b.high && a.low == b.low &&
            a.close == b.close && a.amount == b.amount && a.volume == b.volume;
  for (int i = 0; i < kBookLevels; ++i)
    eq = eq && a.bid[i] == b.bid[i] && a.bid_volume[i] == b.bid_volume[i] && a.ask[i] == b.ask[i] &&
         a.ask_volume[i] == b.ask_volume[i];
  return eq;
}

// Decodes through every entry point; each must agree with verify() and must not crash.
DecodeError decode_all(const uint8_t* data, size_t size) {
  const DecodeError v = wire::verify(data, size);
  wire::Header h;
  CHECK(wire::decode_header(data, size, &h) == v);
  wire::DecodedColumns cols;
  CHECK(wire::decode_columns(data, size, &h, &cols) == v);
  std::vector<Spot> spots;
  std::vector<uint8_t> valid;
  CHECK(wire::decode_spots(data, size, &h, &spots, &valid) == v);
  if (v == DecodeError::None) {
    CHECK_EQ(spots.size(), cols.size());
    CHECK_EQ(valid.size(), cols.size());
    for (size_t i = 0; i < spots.size(); ++i) {
      CHECK_EQ(valid[i] != 0, cols.symbol_keys[i] != kInvalidSymbolKey);
      if (valid[i]) CHECK_EQ(spots[i].symbol.key(), cols.symbol_keys[i]);
      CHECK_EQ(spots[i].datetime, cols.datetime[i]);
    }
  }
  return v;
}

// A batch built with the generated builder, leaving out what `omit` names.
std::vector<uint8_t> build_raw(const std::string& omit, uint16_t version = wire::kSchemaVersion,
                               const char* market = "SH", const char* code = "600000") {
  flatbuffers::FlatBufferBuilder fbb;
  auto m = fbb.CreateString(market);
  auto c = fbb.CreateString(code);
  const wire::Timestamp ts(1795138205000);
  wire::SpotRecordBuilder b(fbb);
  if (omit != "market") b.add_market(m);
  if (omit != "code") b.add_code(c);
  if (omit != "datetime") b.add_datetime(&ts);
  b.add_close(10.0);
  // EndTable, not Finish(): Finish() asserts the required fields in debug builds.
  std::vector<flatbuffers::Offset<wire::SpotRecord>> recs{flatbuffers::Offset<wire::SpotRecord>(fbb.EndTable(b.start_))};
  auto spots = fbb.CreateVector(recs);
  auto header = wire::CreateBatchHeader(fbb, version, 1, 1, 1, 0, 1, 0, 0);
  wire::SpotBatchBuilder bb(fbb);
  if (omit != "header") bb.add_header(header);
  if (omit != "spots") bb.add_spots(spots);
  wire::FinishSpotBatchBuffer(fbb, flatbuffers::Offset<wire::SpotBatch>(fbb.EndTable(bb.start_)));
  return std::vector<uint8_t>(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
}

}  // namespace

TEST_CASE("error names") {
  CHECK_EQ(std::string(wire::decode_error_name(DecodeError::None)), "ok");
  CHECK_EQ(std::string(wire::decode_error_name(DecodeError::TooShort)), "too_short");
  CHECK_EQ(std::string(wire::decode_error_name(DecodeError::BadIdentifier)), "bad_identifier");
  CHECK_EQ(std::string(wire::decode_error_name(DecodeError::Malformed)), "malformed");
  CHECK_EQ(std::string(wire::decode_error_name(DecodeError::UnsupportedVersion)), "unsupported_version");
  CHECK_EQ(std::string(wire::decode_error_name(DecodeError::TooLarge)), "too_large");
  CHECK_EQ(wire::kDecodeErrorCount, 6);
  CHECK_EQ(std::string(wire::SpotBatchIdentifier()), std::string(wire::kFileIdentifier));  // schema == header
}

TEST_CASE("every spot field round-trips") {
  Spot plain;
  plain.symbol = *parse_symbol("BJ830799");
  plain.datetime = make_timestamp(2026, 11, 20, 14, 59, 59);
  plain.close = 3.5;
  plain.volume = 100;
  plain.amount = 350;
  Spot sz = full_spot();
  sz.symbol = *parse_symbol("000001.SZ");
  sz.name = "平安银行 A";
  sz.bid = {std::nan(""), 0, 0, 1.5, 0};  // NaN and a gap survive; the trailing zero is not written
  const std::vector<Spot> in{full_spot(), plain, sz};
  const auto buf = encode(in);
  CHECK(wire::verify(buf.data(), buf.size()) == DecodeError::None);
  CHECK(std::memcmp(buf.data() + 4, "HKSP", 4) == 0);
  std::vector<Spot> out;
  std::vector<uint8_t> valid;
  wire::Header h;
  CHECK(wire::decode_spots(buf.data(), buf.size(), &h, &out, &valid) == DecodeError::None);
  CHECK_EQ(out.size(), size_t(3));
  CHECK(same_spot(out[0], in[0]));
  CHECK(same_spot(out[1], in[1]));
  CHECK(std::isnan(out[2].bid[0]));
  CHECK_EQ(out[2].bid[3], 1.5);
  CHECK_EQ(out[2].name, "平安银行 A");
  CHECK_EQ(out[2].symbol.str(), "SZ000001");
  CHECK(valid == std::vector<uint8_t>({1, 1, 1}));
  CHECK_EQ(out[0].name, "浦发银行");
}

TEST_CASE("the wire carries UTC; the codec converts to China local time") {
  // 2026-11-20 09:30:05 China = 2026-11-20 01:30:05 UTC.
  Spot s = full_spot();
  s.datetime = make_timestamp(2026, 11, 20, 9, 30, 5);
  const auto buf = encode({s});
  const auto* batch = wire::GetSpotBatch(buf.data());
  const int64_t epoch = batch->spots()->Get(0)->datetime()->epoch_ms();
  CHECK_EQ(epoch, make_timestamp(2026, 11, 20, 1, 30, 5));  // naive-UTC ms == epoch ms
  CHECK_EQ(epoch, int64_t(1795138205000));
  CHECK_EQ(wire::to_local_ms(epoch), s.datetime);
  CHECK_EQ(wire::to_epoch_ms(s.datetime), epoch);
  std::vector<const Spot*> ptrs{&s};
  CHECK_EQ(wire::max_epoch_ms(ptrs.data(), 1), epoch);
  CHECK_EQ(wire::max_epoch_ms(ptrs.data(), 0), int64_t(0));
  // Saturation instead of overflow at the extremes.
  CHECK_EQ(wire::to_local_ms(std::numeric_limits<int64_t>::max()), std::numeric_limits<int64_t>::max());
  CHECK_EQ(wire::to_epoch_ms(std::numeric_limits<int64_t>::min()), std::numeric_limits<int64_t>::min());
}

TEST_CASE("header round-trips") {
  const auto buf = encode({full_spot()});
  wire::Header h;
  CHECK(wire::decode_header(buf.data(), buf.size(), &h) == DecodeError::None);
  const wire::Header e = full_header();
  CHECK_EQ(h.schema_version, wire::kSchemaVersion);
  CHECK_EQ(h.publisher_id, e.publisher_id);
  CHECK_EQ(h.sequence, e.sequence);
  CHECK_EQ(h.cycle_id, e.cycle_id);
  CHECK_EQ(h.part_index, e.part_index);
  CHECK_EQ(h.part_count, e.part_count);
  CHECK_EQ(h.send_time_us, e.send_time_us);
  CHECK_EQ(h.market_time_ms, e.market_time_ms);
  CHECK_EQ(h.session_epoch, e.session_epoch);
  CHECK_EQ(h.simulated_time, true);
  CHECK_EQ(h.heartbeat, false);
}

TEST_CASE("an empty batch is valid") {
  const auto buf = encode({});
  wire::DecodedColumns cols;
  cols.close = {1, 2, 3};
  wire::Header h;
  CHECK(wire::decode_columns(buf.data(), buf.size(), &h, &cols) == DecodeError::None);
  CHECK_EQ(cols.size(), size_t(0));
  CHECK_EQ(cols.close.size(), size_t(0));
  CHECK_EQ(h.sequence, uint64_t(42));
}

TEST_CASE("columns decode for the engine") {
  Spot a = full_spot(), b = full_spot();
  b.symbol = *parse_symbol("SZ300750");
  b.datetime += 3000;
  b.close = 11;
  const auto buf = encode({a, b});
  wire::DecodedColumns cols;
  CHECK(wire::decode_columns(buf.data(), buf.size(), nullptr, &cols) == DecodeError::None);
  CHECK_EQ(cols.size(), size_t(2));
  CHECK_EQ(cols.symbol_keys[0], a.symbol.key());
  CHECK_EQ(cols.symbol_keys[1], b.symbol.key());
  CHECK_EQ(cols.datetime[1], b.datetime);
  CHECK_EQ(cols.close[1], 11.0);
  const SpotColumns v = cols.view();
  CHECK_EQ(v.n, size_t(2));
  CHECK_EQ(v.open[0], a.open);
  CHECK_EQ(v.high[0], a.high);
  CHECK_EQ(v.low[0], a.low);
  CHECK_EQ(v.volume[0], a.volume);
  CHECK_EQ(v.amount[0], a.amount);
  CHECK(v.symbol_keys == cols.symbol_keys.data());
  // Capacity is reused: decoding a smaller batch into the same object keeps it.
  const auto small = encode({a});
  const size_t cap = cols.close.capacity();
  CHECK(wire::decode_columns(small.data(), small.size(), nullptr, &cols) == DecodeError::None);
  CHECK_EQ(cols.size(), size_t(1));
  CHECK_EQ(cols.close.capacity(), cap);
}

TEST_CASE("columns encode, by symbol string or key, with a wide book") {
  const std::vector<std::string_view> symbols{"sh600000", "300750.SZ"};
  const std::vector<std::string_view> names{"浦发银行", ""};
  const std::vector<int64_t> dt{make_timestamp(2026, 11, 20, 9, 30, 5), make_timestamp(2026, 11, 20, 9, 30, 8)};
  const std::vector<double> close{10.1, 200.5}, volume{1000, 2000}, amount{10100, 401000}, open{10, 0};
  // 10 levels (level 2): the wire keeps all, a Spot the first five.
  std::vector<double> bid(20), bid_volume(20, 0.0);
  for (int i = 0; i < 20; ++i) bid[i] = 1 + i;
  bid_volume[3] = 7;
  wire::EncodeColumns c;
  c.n = 2;
  c.symbols = symbols.data();
  c.datetime = dt.data();
  c.close = close.data();
  c.volume = volume.data();
  c.amount = amount.data();
  c.open = open.data();
  c.name = names.data();
  c.book_levels = 10;
  c.bid = bid.data();
  c.bid_volume = bid_volume.data();
  const auto buf = wire::encode_columns(full_header(), c);
  const auto* batch = wire::GetSpotBatch(buf.data());
  CHECK_EQ(batch->spots()->Get(0)->bid()->size(), 10u);
  CHECK_EQ(batch->spots()->Get(0)->bid_volume()->size(), 4u);  // trailing zero levels left out
  CHECK(batch->spots()->Get(0)->ask() == nullptr);
  CHECK(batch->spots()->Get(1)->name() == nullptr);
  CHECK_EQ(batch->spots()->Get(0)->market()->str(), "SH");
  CHECK_EQ(batch->spots()->Get(1)->code()->str(), "300750");
  std::vector<Spot> out;
  CHECK(wire::decode_spots(buf.data(), buf.size(), nullptr, &out, nullptr) == DecodeError::None);
  CHECK_EQ(out[0].symbol.str(), "SH600000");
  CHECK_EQ(out[0].name, "浦发银行");
  CHECK_EQ(out[1].symbol.str(), "SZ300750");
  CHECK_EQ(out[0].datetime, dt[0]);
  CHECK_EQ(out[1].close, 200.5);
  CHECK_EQ(out[1].open, 0.0);
  CHECK_EQ(out[1].high, 0.0);
  CHECK_EQ(out[0].bid[4], 5.0);
  CHECK_EQ(out[1].bid[0], 11.0);
  CHECK_EQ(out[0].bid_volume[3], 7.0);

  // By key, and the same bytes as from Spot objects.
  const std::vector<uint32_t> keys{full_spot().symbol.key()};
  const Spot s = full_spot();
  wire::EncodeColumns k;
  k.n = 1;
  k.symbol_keys = keys.data();
  const std::string_view name = s.name;
  k.name = &name;
  k.datetime = &s.datetime;
  k.close = &s.close;
  k.volume = &s.volume;
  k.amount = &s.amount;
  k.open = &s.open;
  k.high = &s.high;
  k.low = &s.low;
  k.yesterday_close = &s.yesterday_close;
  std::vector<double> book[4];
  for (int i = 0; i < kBookLevels; ++i) {
    book[0].push_back(s.bid[i]);
    book[1].push_back(s.bid_volume[i]);
    book[2].push_back(s.ask[i]);
    book[3].push_back(s.ask_volume[i]);
  }
  k.book_levels = kBookLevels;
  k.bid = book[0].data();
  k.bid_volume = book[1].data();
  k.ask = book[2].data();
  k.ask_volume = book[3].data();
  CHECK(wire::encode_columns(full_header(), k) == encode({s}));

  // Invalid input is refused with the row named.
  const std::vector<std::string_view> bad{"sh600000", "XX600000"};
  c.symbols = bad.data();
  CHECK_THROWS(wire::encode_columns(full_header(), c));
  try {
    wire::encode_columns(full_header(), c);
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("row 1") != std::string::npos);
  }
  const uint32_t bad_key = kInvalidSymbolKey;
  k.symbol_keys = &bad_key;
  CHECK_THROWS(wire::encode_columns(full_header(), k));
  k.symbol_keys = keys.data();
  k.close = nullptr;
  CHECK_THROWS(wire::encode_columns(full_header(), k));
  wire::EncodeColumns empty;
  CHECK(wire::verify(wire::encode_columns(full_header(), empty).data(),
                     wire::encode_columns(full_header(), empty).size()) == DecodeError::None);
}

TEST_CASE("a reused Encoder gives the same bytes") {
  wire::Encoder enc;
  const Spot s = full_spot();
  std::vector<Spot> many(1000, s);
  std::vector<const Spot*> ptrs;
  for (const Spot& x : many) ptrs.push_back(&x);
  const auto big = enc.encode_spots(full_header(), ptrs.data(), ptrs.size());
  CHECK(std::vector<uint8_t>(big.data, big.data + big.size) == wire::encode_spots(full_header(), ptrs.data(), 1000));
  const auto one = enc.encode_spots(full_header(), ptrs.data(), 1);
  CHECK(std::vector<uint8_t>(one.data, one.data + one.size) == encode({s}));
  CHECK(big.size / 1000 < 400);
}

// The message the generic FlatBuffers calls make for these spots (the encoder's one-pass
// record writer must give the same bytes).
std::vector<uint8_t> reference_encode(const wire::Header& h, const std::vector<Spot>& spots) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::SpotRecord>> recs;
  flatbuffers::Offset<flatbuffers::String> markets[kMarketCount];
  auto levels = [&](const std::array<double, kBookLevels>& v) {
    size_t n = kBookLevels;
    while (n > 0 && v[n - 1] == 0.0) --n;
    return n == 0 ? flatbuffers::Offset<flatbuffers::Vector<double>>() : fbb.CreateVector(v.data(), n);
  };
  for (const Spot& s : spots) {
    auto& m = markets[static_cast<size_t>(s.symbol.market)];
    if (m.IsNull()) m = fbb.CreateSharedString(market_name(s.symbol.market), 2);
    const std::string digits = s.symbol.code_str();
    auto code = fbb.CreateString(digits.data(), 6);
    auto name = s.name.empty() ? flatbuffers::Offset<flatbuffers::String>() : fbb.CreateString(s.name);
    auto bid = levels(s.bid), bid_volume = levels(s.bid_volume), ask = levels(s.ask), ask_volume = levels(s.ask_volume);
    const wire::Timestamp ts(wire::to_epoch_ms(s.datetime));
    wire::SpotRecordBuilder b(fbb);
    b.add_datetime(&ts);
    b.add_yesterday_close(s.yesterday_close);
    b.add_open(s.open);
    b.add_high(s.high);
    b.add_low(s.low);
    b.add_close(s.close);
    b.add_amount(s.amount);
    b.add_volume(s.volume);
    b.add_market(m);
    b.add_code(code);
    if (!name.IsNull()) b.add_name(name);
    if (!bid.IsNull()) b.add_bid(bid);
    if (!bid_volume.IsNull()) b.add_bid_volume(bid_volume);
    if (!ask.IsNull()) b.add_ask(ask);
    if (!ask_volume.IsNull()) b.add_ask_volume(ask_volume);
    recs.push_back(b.Finish());
  }
  auto vec = fbb.CreateVector(recs);
  auto header = wire::CreateBatchHeader(fbb, h.schema_version, h.publisher_id, h.sequence, h.cycle_id, h.part_index,
                                        h.part_count, h.send_time_us, h.market_time_ms, h.session_epoch, h.heartbeat,
                                        h.simulated_time, h.day_end, h.changes_only);
  wire::FinishSpotBatchBuffer(fbb, wire::CreateSpotBatch(fbb, header, vec));
  return std::vector<uint8_t>(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
}

TEST_CASE("the one-pass record writer makes the generic builder's bytes") {
  std::mt19937_64 rng(13);
  const double values[] = {0.0, -0.0, 1.5, std::nan(""), 1e300, -3.25, 7.0, 0.125};
  const char* names[] = {"", "x", "ab", "abc", "浦发银行", "中国石油天然气股份有限公司", "0123456789abcdef0"};
  auto pick = [&] { return values[rng() % 8]; };
  wire::Encoder enc;  // reused: its vtable list and buffer carry over between messages
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<Spot> spots(rng() % 30);
    for (Spot& s : spots) {
      s.symbol = Symbol::from_key(static_cast<uint32_t>(rng() % (kMarketCount * kCodesPerMarket)));
      s.name = names[rng() % 7];
      s.datetime = make_timestamp(2026, 11, 20, 9, 30, 5) + static_cast<int64_t>(rng() % 100000000) - 50000000;
      for (double* f : {&s.yesterday_close, &s.open, &s.high, &s.low, &s.close, &s.amount, &s.volume}) *f = pick();
      for (auto* book : {&s.bid, &s.bid_volume, &s.ask, &s.ask_volume})
        for (double& v : *book) v = rng() % 3 == 0 ? 0.0 : pick();
    }
    wire::Header h = full_header();
    h.sequence = static_cast<uint64_t>(trial);
    std::vector<const Spot*> ptrs;
    for (const Spot& s : spots) ptrs.push_back(&s);
    const wire::ByteView v = enc.encode_spots(h, ptrs.data(), ptrs.size());
    CHECK(std::vector<uint8_t>(v.data, v.data + v.size) == reference_encode(h, spots));
  }
}

TEST_CASE("decoding into caller-owned spots gives decode_spots' spots and errors") {
  Spot bad = full_spot();
  std::vector<Spot> spots{full_spot(), bad, full_spot()};
  spots[2].name = std::string(40, 'n');  // past the inline string size
  spots[2].symbol = *parse_symbol("BJ830799");
  const auto msg = encode(spots);
  std::vector<Spot> expected;
  std::vector<uint8_t> valid;
  CHECK(wire::decode_spots(msg.data(), msg.size(), nullptr, &expected, &valid) == DecodeError::None);
  const size_t n = wire::spot_count(msg.data(), msg.size());
  CHECK_EQ(n, spots.size());
  std::vector<Spot> got(n);
  std::vector<Spot*> ptrs;
  for (Spot& s : got) ptrs.push_back(&s);
  std::vector<uint8_t> flags(n, 9);
  wire::Header h;
  CHECK(wire::decode_spots_into(msg.data(), msg.size(), &h, ptrs.data(), n, flags.data()) == DecodeError::None);
  CHECK_EQ(h.sequence, full_header().sequence);
  CHECK(flags == valid);
  for (size_t i = 0; i < n; ++i) CHECK(same_spot(got[i], expected[i]));
  CHECK(wire::decode_spots_into(msg.data(), msg.size(), nullptr, ptrs.data(), n - 1, nullptr) ==
        DecodeError::Malformed);  // a count that is not the batch's
  const std::vector<uint8_t> cut(msg.begin(), msg.begin() + static_cast<std::ptrdiff_t>(msg.size() / 2));
  const size_t cut_count = wire::spot_count(cut.data(), cut.size());  // the root may still verify
  CHECK(cut_count <= n);
  CHECK(wire::decode_spots_into(cut.data(), cut.size(), nullptr, ptrs.data(), cut_count, nullptr) ==
        DecodeError::Malformed);
  CHECK(wire::decode_spots(cut.data(), cut.size(), nullptr, &expected, nullptr) == DecodeError::Malformed);
  CHECK_EQ(wire::spot_count(msg.data(), 4), size_t{0});
  CHECK(wire::decode_spots_into(msg.data(), 4, nullptr, ptrs.data(), 0, nullptr) == DecodeError::TooShort);
}

TEST_CASE("reject reasons") {
  const auto good = encode({full_spot()});
  CHECK(decode_all(nullptr, 0) == DecodeError::TooShort);
  CHECK(decode_all(good.data(), 0) == DecodeError::TooShort);
  CHECK(decode_all(good.data(), 7) == DecodeError::TooShort);
  for (size_t n = 8; n < 12; ++n) CHECK(decode_all(good.data(), n) == DecodeError::Malformed);
  auto wrong = good;
  std::memcpy(wrong.data() + 4, "HKSQ", 4);
  CHECK(decode_all(wrong.data(), wrong.size()) == DecodeError::BadIdentifier);
  // Trailing bytes: the verifier is given exactly the message, so they are its own concern;
  // a batch with garbage appended still verifies (FlatBuffers ignores unreferenced bytes).
  auto longer = good;
  longer.resize(good.size() + 8, 0xAB);
  CHECK(decode_all(longer.data(), longer.size()) == DecodeError::None);
  // Versions.
  wire::Header h = full_header();
  h.schema_version = 2;
  const auto v2 = encode({full_spot()}, h);
  CHECK(decode_all(v2.data(), v2.size()) == DecodeError::UnsupportedVersion);
  h.schema_version = 0;
  const auto v0 = encode({full_spot()}, h);
  CHECK(decode_all(v0.data(), v0.size()) == DecodeError::UnsupportedVersion);
  // A later version is reported as such even if its spots do not verify against this schema.
  auto v2bad = build_raw("market", 2);
  CHECK(decode_all(v2bad.data(), v2bad.size()) == DecodeError::UnsupportedVersion);
}

TEST_CASE("missing required fields are malformed") {
  const auto ok = build_raw("");
  CHECK(decode_all(ok.data(), ok.size()) == DecodeError::None);
  for (const char* omit : {"market", "code", "datetime", "header", "spots"}) {
    const auto buf = build_raw(omit);
    if (decode_all(buf.data(), buf.size()) != DecodeError::Malformed) std::printf("  omitting %s\n", omit);
    CHECK(wire::verify(buf.data(), buf.size()) == DecodeError::Malformed);
  }
}

TEST_CASE("an invalid market or code flags only its row") {
  for (auto [market, code] : {std::pair{"XX", "600000"}, std::pair{"SH", "60000"}, std::pair{"SH", "60000a"},
                              std::pair{"", ""}, std::pair{"SHA", "600000"}}) {
    const auto buf = build_raw("", wire::kSchemaVersion, market, code);
    wire::DecodedColumns cols;
    CHECK(wire::decode_columns(buf.data(), buf.size(), nullptr, &cols) == DecodeError::None);
    CHECK_EQ(cols.symbol_keys[0], kInvalidSymbolKey);
    CHECK_EQ(cols.close[0], 10.0);
    std::vector<Spot> spots;
    std::vector<uint8_t> valid;
    CHECK(wire::decode_spots(buf.data(), buf.size(), nullptr, &spots, &valid) == DecodeError::None);
    CHECK_EQ(valid[0], uint8_t(0));
    CHECK_EQ(spots[0].close, 10.0);
  }
  const auto lower = build_raw("", wire::kSchemaVersion, "sz", "000001");  // lenient on case
  wire::DecodedColumns cols;
  CHECK(wire::decode_columns(lower.data(), lower.size(), nullptr, &cols) == DecodeError::None);
  CHECK_EQ(cols.symbol_keys[0], parse_symbol("SZ000001")->key());
}

TEST_CASE("invalid UTF-8 in a name is replaced, not passed on") {
  Spot s = full_spot();
  s.name = std::string("ab\xFF\xE6\xB5", 5) + "浦";
  const auto buf = encode({s});
  std::vector<Spot> out;
  CHECK(wire::decode_spots(buf.data(), buf.size(), nullptr, &out, nullptr) == DecodeError::None);
  CHECK_EQ(out[0].name, "ab\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD浦");
}

TEST_CASE("a misaligned buffer decodes the same") {
  const auto good = encode({full_spot(), full_spot()});
  std::vector<uint8_t> shifted(good.size() + 3);
  std::memcpy(shifted.data() + 3, good.data(), good.size());
  std::vector<Spot> out;
  CHECK(wire::decode_spots(shifted.data() + 3, good.size(), nullptr, &out, nullptr) == DecodeError::None);
  CHECK_EQ(out.size(), size_t(2));
  CHECK(same_spot(out[1], full_spot()));
}

TEST_CASE("hostile input: truncations, bit flips, random bytes") {
  const auto good = encode({full_spot(), full_spot()});
  // Every truncation: an error, except that cutting only the final alignment padding
  // (after the first string written, "SH\0") leaves every object intact.
  for (size_t n = 0; n < good.size(); ++n) {
    std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));  // exact-size heap block
    const DecodeError e = decode_all(cut.data(), cut.size());
    if (e == DecodeError::None) {
      CHECK(good.size() - n < 4);
      CHECK(good[n] == 0);
    }
  }
  // Every single-bit flip.
  size_t flips_ok = 0;
  for (size_t byte = 0; byte < good.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      auto bad = good;
      bad[byte] ^= static_cast<uint8_t>(1u << bit);
      if (decode_all(bad.data(), bad.size()) == DecodeError::None) ++flips_ok;
    }
  }
  CHECK(flips_ok > 0);  // flips in doubles decode fine; the point is that nothing crashed
  // Random multi-byte corruption and random bytes, with and without a valid identifier.
  std::mt19937_64 rng(12345);
  for (int round = 0; round < 20000; ++round) {
    std::vector<uint8_t> buf;
    if (round % 2 == 0) {
      buf = good;
      const int hits = 1 + static_cast<int>(rng() % 8);
      for (int i = 0; i < hits; ++i) buf[rng() % buf.size()] = static_cast<uint8_t>(rng());
    } else {
      buf.resize(rng() % 600);
      for (auto& b : buf) b = static_cast<uint8_t>(rng());
      if (buf.size() >= 8 && round % 4 == 1) std::memcpy(buf.data() + 4, "HKSP", 4);
    }
    decode_all(buf.data(), buf.size());
  }
}

// flatbuffers::Verifier's verdict on the whole batch (the reference the fused verifier follows).
bool reference_ok(const uint8_t* data, size_t size) {
  flatbuffers::Verifier::Options opts;
  opts.max_depth = 8;
  opts.max_tables = static_cast<flatbuffers::uoffset_t>(std::min<size_t>(size / 4 + 16, 0x7FFFFFFF));
  flatbuffers::Verifier v(data, size, opts);
  if (size < 8 || !flatbuffers::BufferHasIdentifier(data, wire::SpotBatchIdentifier())) return false;
  if (!wire::VerifySpotBatchBuffer(v)) return false;
  const uint16_t version = wire::GetSpotBatch(data)->header()->schema_version();
  return version >= 1 && version <= wire::kSchemaVersion;
}

TEST_CASE("the fused record verifier agrees with flatbuffers::Verifier on fuzzed input") {
  Spot narrow = full_spot();
  narrow.name.clear();
  narrow.bid = narrow.bid_volume = narrow.ask = narrow.ask_volume = {};
  Spot sz = full_spot();
  sz.symbol = *parse_symbol("SZ000001");
  const std::vector<std::vector<uint8_t>> seeds = {encode({full_spot(), sz, narrow}), encode({narrow, narrow}),
                                                   build_raw(""), encode({})};
  std::mt19937_64 rng(777);
  size_t agreed_ok = 0, agreed_bad = 0;
  for (int round = 0; round < 60000; ++round) {
    const auto& seed = seeds[static_cast<size_t>(round) % seeds.size()];
    // 8-aligned storage, as the decoders align their input: alignment rules are relative to the start
    std::vector<uint64_t> storage((seed.size() + 7) / 8 + 1);
    auto* buf = reinterpret_cast<uint8_t*>(storage.data());
    std::memcpy(buf, seed.data(), seed.size());
    size_t size = seed.size();
    const int hits = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < hits; ++i) {
      const size_t at = rng() % size;
      switch (rng() % 3) {
        case 0: buf[at] = static_cast<uint8_t>(rng()); break;  // any byte
        case 1: buf[at] = static_cast<uint8_t>(buf[at] + (rng() % 2 ? 1 : 255)); break;  // an offset off by one
        default: buf[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
      }
    }
    if (rng() % 8 == 0) size -= std::min<size_t>(size, rng() % 16);
    const bool reference = reference_ok(buf, size);
    const bool fused = wire::verify(buf, size) == DecodeError::None;
    CHECK_EQ(fused, reference);
    wire::DecodedColumns cols;
    CHECK_EQ(wire::decode_columns(buf, size, nullptr, &cols, true) == DecodeError::None, reference);
    (reference ? agreed_ok : agreed_bad) += 1;
  }
  CHECK(agreed_ok > 1000);  // both kinds of input were exercised
  CHECK(agreed_bad > 1000);
}

TEST_CASE("columns with details rebuild every field of a spot") {
  Spot other = full_spot();
  other.symbol = *parse_symbol("BJ830799");
  other.name = "x";
  other.ask = {11.0, 0, 0, 0, 0};
  const auto msg = encode({full_spot(), other});
  wire::DecodedColumns cols;
  CHECK(wire::decode_columns(msg.data(), msg.size(), nullptr, &cols, true) == DecodeError::None);
  CHECK(cols.has_details);
  CHECK_EQ(cols.size(), size_t(2));
  CHECK(same_spot(cols.spot(0), full_spot()));
  CHECK(same_spot(cols.spot(1), other));
  CHECK(wire::decode_columns(msg.data(), msg.size(), nullptr, &cols) == DecodeError::None);
  CHECK(!cols.has_details);
  CHECK(cols.names.empty() && cols.bid.empty());
}

TEST_CASE("wire symbols resolve through the session's cache, every hit checked against the row") {
  Spot a = full_spot(), b = full_spot();
  b.symbol = *parse_symbol("SZ000001");
  wire::Header h = full_header();
  wire::SymbolCache cache(4);
  wire::DecodedColumns cols;
  const auto first = encode({a, b}, h);
  CHECK(wire::decode_columns(first.data(), first.size(), nullptr, &cols, false, &cache) == DecodeError::None);
  CHECK_EQ(cache.misses, 2u);
  CHECK(wire::decode_columns(first.data(), first.size(), nullptr, &cols, false, &cache) == DecodeError::None);
  CHECK_EQ(cache.hits, 2u);  // the same universe in the same order: nothing parsed
  const auto swapped = encode({b, a}, h);  // rows moved: parsed again, keys right
  CHECK(wire::decode_columns(swapped.data(), swapped.size(), nullptr, &cols, false, &cache) == DecodeError::None);
  CHECK_EQ(cache.misses, 4u);
  CHECK_EQ(cols.symbol_keys[0], b.symbol.key());
  CHECK_EQ(cols.symbol_keys[1], a.symbol.key());
  wire::Header other = h;
  other.part_index = 0;  // another slot (another part of the cycle): 2 + 2 rows fit the bound of 4
  const auto part0 = encode({a, b}, other);
  CHECK(wire::decode_columns(part0.data(), part0.size(), nullptr, &cols, false, &cache) == DecodeError::None);
  CHECK_EQ(cache.cached_rows(), size_t(4));
  other.part_index = 1;  // a third slot: the least recently used one (part 2) is forgotten
  const auto part1 = encode({a}, other);
  CHECK(wire::decode_columns(part1.data(), part1.size(), nullptr, &cols, false, &cache) == DecodeError::None);
  CHECK_EQ(cache.cached_rows(), size_t(3));
  const uint64_t misses = cache.misses;
  CHECK(wire::decode_columns(part0.data(), part0.size(), nullptr, &cols, false, &cache) == DecodeError::None);
  CHECK_EQ(cache.misses, misses);  // part 0 was kept
  const auto big = encode({a, b, a, b, a}, h);  // larger than the bound: not cached, still decoded
  CHECK(wire::decode_columns(big.data(), big.size(), nullptr, &cols, false, &cache) == DecodeError::None);
  CHECK_EQ(cols.symbol_keys[4], a.symbol.key());
  CHECK(cache.cached_rows() <= 4);
}

TEST_MAIN()
