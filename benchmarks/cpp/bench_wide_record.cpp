// Baselines for benchmarks/bench_kdata.py, fed the same synthetic day the Python rows use.
//
//   bench_wide_record wide   DAY_FILE   a hand-written loop over a wide spot record into 8 periods
//   bench_wide_record engine DAY_FILE   hkrt's KDataEngine::ingest_columns into all 13 periods
//
// DAY_FILE (written by bench_kdata.py, little-endian): "HKRTDAY1", uint64 symbols, uint64 pushes,
// the symbols as 8-byte codes ("SH600000"), then per push: int64 datetime (naive local ms) and
// six float64 columns of `symbols` values: open, high, low, close, volume, amount (volume and
// amount cumulative for the day).  Prints "spots=N seconds=S spots_per_second=R".  Pushes are read
// one at a time and only the processing of each is timed, in both modes.
//
// The wide loop is what a developer writes by hand without hkrt: the record a quote API hands
// over (symbol and name strings, five book levels), a hash map from the symbol string to its
// state, bars labelled by their end, volume from differences of the cumulative totals.  It has
// none of hkrt's rules (no validation, calendar, carry-in, gap volume, flat bars, reports), so
// it is a speed reference, not an equal product.  Building the wide records is not timed; only
// the loop over them is.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kdata/engine.h"

namespace {

// The day file, read one push at a time (the reads are not timed).
class DayFile {
 public:
  ~DayFile() {
    if (file_) std::fclose(file_);
  }
  bool open(const char* path) {
    file_ = std::fopen(path, "rb");
    if (!file_) return false;
    char magic[8];
    if (std::fread(magic, 1, 8, file_) != 8 || std::memcmp(magic, "HKRTDAY1", 8) != 0 ||
        std::fread(&symbols, 8, 1, file_) != 1 || std::fread(&pushes, 8, 1, file_) != 1)
      return false;
    std::vector<char> raw(symbols * 8);
    if (std::fread(raw.data(), 1, raw.size(), file_) != raw.size()) return false;
    for (uint64_t i = 0; i < symbols; ++i) codes.emplace_back(raw.data() + i * 8, strnlen(raw.data() + i * 8, 8));
    values_.resize(6 * symbols);
    return true;
  }
  // The next push: its datetime and columns (open, high, low, close, volume, amount).
  bool next() {
    return std::fread(&datetime, 8, 1, file_) == 1 &&
           std::fread(values_.data(), 8, values_.size(), file_) == values_.size();
  }
  const double* column(int field) const { return values_.data() + static_cast<uint64_t>(field) * symbols; }

  uint64_t symbols = 0, pushes = 0;
  std::vector<std::string> codes;
  int64_t datetime = 0;

 private:
  FILE* file_ = nullptr;
  std::vector<double> values_;
};

// ---------------------------------------------------------------- the hand-written loop
struct WideSpot {
  std::string symbol, name;
  int64_t datetime = 0;
  double yesterday_close = 0, open = 0, high = 0, low = 0, close = 0, volume = 0, amount = 0;
  std::array<double, 5> bid{}, bid_volume{}, ask{}, ask_volume{};
};

struct SimpleBar {
  int64_t label;
  double open, high, low, close, volume, amount;
};

constexpr int kPeriods = 8;  // MIN, MIN5, MIN15, MIN30, MIN60, DAY, WEEK, MONTH
constexpr int kIntradayMinutes[5] = {1, 5, 15, 30, 60};

struct WideState {
  double last_volume = 0, last_amount = 0;
  std::array<SimpleBar, kPeriods> forming{};
  std::array<bool, kPeriods> has{};
  std::array<std::vector<SimpleBar>, kPeriods> bars;
};

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Minute m of the day's 240, (t-1min, t]: 09:30-11:30 then 13:00-15:00; earlier folds into 0.
int trading_minute(int64_t ms_of_day) {
  const int64_t morning = 9 * 3600000LL + 30 * 60000LL, afternoon = 13 * 3600000LL;
  if (ms_of_day <= morning) return 0;
  if (ms_of_day < afternoon) return static_cast<int>(std::min<int64_t>(119, (ms_of_day - morning - 1) / 60000));
  if (ms_of_day == afternoon) return 120;
  return 120 + static_cast<int>(std::min<int64_t>(119, (ms_of_day - afternoon - 1) / 60000));
}

int64_t month_key(int64_t day) {  // days since 1970-01-01 -> year * 12 + month (civil_from_days)
  day += 719468;
  const int64_t era = floor_div(day, 146097), doe = day - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  return (yoe + era * 400 + (month <= 2)) * 12 + month;
}

size_t wide_loop(const std::vector<WideSpot>& spots, std::unordered_map<std::string, WideState>& states) {
  size_t completed = 0;
  for (const WideSpot& s : spots) {
    WideState& st = states[s.symbol];
    const double dv = s.volume - st.last_volume, da = s.amount - st.last_amount;
    st.last_volume = s.volume;
    st.last_amount = s.amount;
    const int64_t day = floor_div(s.datetime, 86400000LL);
    const int minute = trading_minute(s.datetime - day * 86400000LL);
    std::array<int64_t, kPeriods> labels;
    for (int p = 0; p < 5; ++p) {
      const int n = kIntradayMinutes[p];
      const int end = minute < 120 ? (minute / n + 1) * n : 120 + ((minute - 120) / n + 1) * n;
      labels[p] = day * 86400000LL + (end <= 120 ? 9 * 3600000LL + 30 * 60000LL + end * 60000LL
                                                 : 13 * 3600000LL + (end - 120) * 60000LL);
    }
    labels[5] = day;
    labels[6] = floor_div(day + 3, 7);  // weeks starting on Monday (1970-01-01 was a Thursday)
    labels[7] = month_key(day);
    for (int p = 0; p < kPeriods; ++p) {
      SimpleBar& bar = st.forming[p];
      const bool day_period = p >= 5;
      if (!st.has[p] || bar.label != labels[p]) {
        if (st.has[p]) {
          st.bars[p].push_back(bar);
          ++completed;
        }
        st.has[p] = true;
        bar = SimpleBar{labels[p], day_period ? s.open : s.close, day_period ? s.high : s.close,
                        day_period ? s.low : s.close, s.close, dv, da};
      } else {
        bar.high = std::max(bar.high, day_period ? s.high : s.close);
        bar.low = std::min(bar.low, day_period ? s.low : s.close);
        bar.close = s.close;
        bar.volume += dv;
        bar.amount += da;
      }
    }
  }
  return completed;
}

double run_wide(DayFile& day) {
  std::unordered_map<std::string, WideState> states;
  std::vector<WideSpot> spots(day.symbols);
  for (uint64_t i = 0; i < day.symbols; ++i) {
    spots[i].symbol = day.codes[i];
    spots[i].name = "name " + day.codes[i].substr(2);
  }
  double seconds = 0;
  size_t completed = 0;
  for (uint64_t p = 0; p < day.pushes; ++p) {
    if (!day.next()) return -1;
    for (uint64_t i = 0; i < day.symbols; ++i) {  // a quote API fills its records: not timed
      WideSpot& w = spots[i];
      w.datetime = day.datetime;
      w.open = day.column(0)[i];
      w.high = day.column(1)[i];
      w.low = day.column(2)[i];
      w.close = day.column(3)[i];
      w.volume = day.column(4)[i];
      w.amount = day.column(5)[i];
      w.yesterday_close = w.open;
      for (int l = 0; l < 5; ++l) {
        w.bid[l] = w.close - 0.01 * (l + 1);
        w.ask[l] = w.close + 0.01 * (l + 1);
        w.bid_volume[l] = w.ask_volume[l] = 100.0 * (l + 1);
      }
    }
    const auto start = std::chrono::steady_clock::now();
    completed += wide_loop(spots, states);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  std::fprintf(stderr, "wide loop: %zu completed bars\n", completed);
  return seconds;
}

// ----------------------------------------------------------------------- the engine alone
double run_engine(DayFile& day) {
  std::vector<uint32_t> keys(day.symbols);
  for (uint64_t i = 0; i < day.symbols; ++i) {
    const std::optional<hkrt::Symbol> sym = hkrt::parse_symbol(day.codes[i]);
    if (!sym) return -1;
    keys[i] = sym->key();
  }
  std::vector<int64_t> datetime(day.symbols);
  hkrt::KDataEngine engine;
  size_t accepted = 0;
  double seconds = 0;
  for (uint64_t p = 0; p < day.pushes; ++p) {
    if (!day.next()) return -1;
    std::fill(datetime.begin(), datetime.end(), day.datetime);
    hkrt::SpotColumns c;
    c.n = day.symbols;
    c.symbol_keys = keys.data();
    c.datetime = datetime.data();
    c.open = day.column(0);
    c.high = day.column(1);
    c.low = day.column(2);
    c.close = day.column(3);
    c.volume = day.column(4);
    c.amount = day.column(5);
    const auto start = std::chrono::steady_clock::now();
    accepted += engine.ingest_columns(c);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  std::fprintf(stderr, "engine: %zu accepted, %.1f MiB\n", accepted, engine.memory_bytes() / 1048576.0);
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::strcmp(argv[1], "wide") != 0 && std::strcmp(argv[1], "engine") != 0)) {
    std::fprintf(stderr, "usage: %s wide|engine DAY_FILE\n", argv[0]);
    return 2;
  }
  DayFile day;
  if (!day.open(argv[2])) {
    std::fprintf(stderr, "cannot read %s: not a day file of bench_kdata.py\n", argv[2]);
    return 1;
  }
  const double seconds = std::strcmp(argv[1], "wide") == 0 ? run_wide(day) : run_engine(day);
  if (seconds <= 0) {
    std::fprintf(stderr, "%s is truncated or holds a symbol that is not SH/SZ/BJ plus six digits\n", argv[2]);
    return 1;
  }
  const double spots = static_cast<double>(day.symbols * day.pushes);
  std::printf("spots=%.0f seconds=%.6f spots_per_second=%.0f\n", spots, seconds, spots / seconds);
  return 0;
}
