#include "engine.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>

namespace hkrt {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int kOutside = TradingSchedule::kOutside;

constexpr const char* kReasonNames[kRejectReasonCount] = {
    "invalid_symbol", "invalid_value",        "non_trading_day",      "outside_session",
    "out_of_order",   "cumulative_decreased", "conflicting_duplicate", "outside_calendar",
    "beyond_bounds",  "ahead_of_clock"};

bool valid_number(double v) { return std::isfinite(v) && v >= 0; }

Bar combine(const Bar& earlier, const Bar& later) {
  return Bar{later.datetime,
             earlier.open,
             std::max(earlier.high, later.high),
             std::min(earlier.low, later.low),
             later.close,
             earlier.volume + later.volume,
             earlier.amount + later.amount};
}
}  // namespace

const char* reject_reason_name(RejectReason r) { return kReasonNames[static_cast<int>(r)]; }

constexpr int kIntradayCount = 7;  // MIN..HOUR2 are ktype indices 0..6
constexpr size_t kMaxGapSpans = 64;

constexpr int16_t kNever = INT16_MAX;   // no bar of the day is due (sweep thresholds)
constexpr size_t kStatesPerChunk = 256;

// What a symbol's spots rarely touch: totals of the day outside the bars, period bases,
// the bar series.
struct KDataEngine::SymbolCold {
  Symbol symbol;
  bool seen = false;  // a spot or preload named it (reserve() alone does not)
  double carry_volume = 0, carry_amount = 0;
  double gap_volume = 0, gap_amount = 0;
  uint32_t gap_spans = 0, gap_repaired = 0;
  // The spans of today's gap volume, by trading minute (first: the minute of the last spot
  // before it, last: the minute of the spot that showed it), for repair_gaps().  Bounded:
  // past kMaxGapSpans a span merges into the last one (a repair of a longer span is still
  // exact: minutes with spots subtract what their bars hold).
  struct GapSpan {
    int16_t first, last;
    double volume, amount;
  };
  std::vector<GapSpan> gaps;
  double regular_volume = 0, regular_amount = 0;  // totals at the last spot before the close cutoff
  double after_hours_volume = 0, after_hours_amount = 0;
  DayNumber bases_day = INT64_MIN;  // day the period bases were computed for
  std::array<Bar, kKTypeCount> period_base{};  // the period's earlier days: history bar + DAY bars
  std::array<bool, kKTypeCount> has_period_base{};
  std::array<DayNumber, kKTypeCount> period_label{};  // today's period label (its last trading day)
  // A preloaded bar of the current period that ends before the first live day of it (a
  // vendor's week so far): live bars continue it.  period_history_start tells its period.
  std::array<Bar, kKTypeCount> period_history{};
  std::array<DayNumber, kKTypeCount> period_history_start{};
};

// What every spot touches, three cache lines per symbol, in one dense array (a push walks it
// forward: feeds send their symbols in the same order every push).  A spot in the minute of
// the symbol's last spot (19 of 20 at a 3 s feed) touches nothing else.
struct alignas(64) KDataEngine::SymbolHot {
  DayNumber day = INT64_MIN;  // the trading day the state describes
  // The last accepted spot of the day (volume/amount start at the carry-in base).
  TimestampMs last_ts = INT64_MIN;
  double last_volume = 0, last_amount = 0, last_close = 0, last_high = 0, last_low = 0;
  double price = 0;  // the last regular spot's price: flat bars are filled at it
  // Day extremes already given to a bar; a spot whose day high/low goes past them
  // brings the new extreme into the bars that receive it.
  double ext_high = 0, ext_low = kInf;
  // Fast spots (another spot in the minute of the last one) update only DAY; what they add
  // to the intraday forming bars (all in the buckets of that minute) waits here until settle().
  double pend_high = -kInf, pend_low = kInf, pend_volume = 0, pend_amount = 0;
  int16_t last_minute = -1;  // see SymbolState::heard_ts
  int16_t fast_minute = -1;  // the minute a fast spot must be in
  bool fast = false;         // the next spot in fast_minute may take the fast path
  bool pending = false;      // pend_* hold something
  bool dirty = false;        // forming bars changed since they were last written to the series
  uint32_t state = 0;        // index of the symbol's SymbolState
  Bar day_bar{};
};
static_assert(sizeof(KDataEngine::SymbolHot) == 192, "three cache lines");
static_assert(sizeof(Bar) == 64, "the hot state is laid out in cache lines");

struct KDataEngine::SymbolState {
  SymbolHot* hot = nullptr;
  uint32_t key = 0;  // Symbol::key() of cold->symbol, here where reporting a bar reads it (cold is another line)
  // When the feed last told anything about the symbol, besides the symbol's own last spot
  // (hot->last_ts, which fast spots move): the feed's datetime when it repeated an unchanged spot.
  TimestampMs heard_ts = INT64_MIN;
  bool after_hours = false;  // an after-hours spot came: last_volume/amount are after-hours totals
  bool carry = false;   // the day's first spot came after the first minute
  bool traded = false;  // today's bars exist
  bool day_reported = false;  // DAY (and ending periods) reported complete
  // The forming bar of each intraday period (without the fast spots still in hot->pend_*).  It
  // is written to its series when it completes or when someone reads the series (flush).
  std::array<Bar, kIntradayCount> forming{};
  std::array<int16_t, kIntradayCount> last_bucket{};  // today's newest intraday bucket, -1 before
  std::array<int16_t, kIntradayCount> reported{};     // today's last bucket reported complete
  // advance_to() has work here once elapsed minutes > fill_due or completed >= report_due.
  int16_t fill_due = kNever, report_due = kNever;
  // The bars of every period (a completed minute is appended here once a minute).
  std::array<BarSeries, kKTypeCount> series;
  std::unique_ptr<SymbolCold> cold;
};

namespace {
constexpr size_t kHotPerChunk = 1024;

// Asks for the cache lines of [p, p + bytes), to be written.
void prefetch_lines(const void* p, size_t bytes) {
#if defined(__GNUC__) || defined(__clang__)
  const char* first = static_cast<const char*>(p);
  for (size_t line = 0; line < bytes; line += 64) __builtin_prefetch(first + line, 1);
#else
  (void)p;
  (void)bytes;
#endif
}
}  // namespace

KDataEngine::KDataEngine(EngineConfig config) : config_(std::move(config)) {
  for (KType k : config_.ktypes) enabled_[ktype_index(k)] = true;
  for (KType k : kAllKTypes) {
    if (!enabled_[ktype_index(k)]) continue;
    if (is_intraday(k)) intraday_.push_back(k);
    if (is_multi_day(k)) multi_day_.push_back(k);
  }
  // WEEK..YEAR are built from DAY bars, so DAY is kept whenever one of them is.
  if (!multi_day_.empty()) enabled_[ktype_index(KType::DAY)] = true;
  keep_day_ = enabled_[ktype_index(KType::DAY)];
}

KDataEngine::~KDataEngine() = default;

std::vector<KType> KDataEngine::enabled_ktypes() const {
  std::vector<KType> out;
  for (KType k : kAllKTypes)
    if (enabled_[ktype_index(k)]) out.push_back(k);
  return out;
}

IngestResult KDataEngine::reject(RejectReason r) {
  ++stats_.rejected[static_cast<int>(r)];
  return IngestResult{IngestOutcome::Rejected, r};
}

namespace {
// The DAY bar after a spot (one rule for the fast and the general path): the session's open once
// the feed gives it, extremes including the feed's own high/low, totals as the feed's cumulative ones.
void update_day_bar(Bar& d, const SpotFields& s, double price) {
  if (s.open > 0) d.open = s.open;
  d.high = std::max({d.high, d.open, s.high, price});
  d.low = std::min({d.low, d.open, s.low > 0 ? s.low : price, price});
  d.close = price;
  d.volume = s.volume;
  d.amount = s.amount;
}
}  // namespace

inline Bar& KDataEngine::forming(SymbolState& st, int ktype_idx) {
  return st.forming[static_cast<size_t>(ktype_idx)];
}

KDataEngine::SymbolState& KDataEngine::create_state(Symbol sym) {
  const size_t n = states_.size();
  if (n % kStatesPerChunk == 0) chunks_.push_back(std::make_unique<SymbolState[]>(kStatesPerChunk));
  if (n % kHotPerChunk == 0) hot_chunks_.push_back(std::make_unique<SymbolHot[]>(kHotPerChunk));
  SymbolState& st = chunks_.back()[n % kStatesPerChunk];
  st.hot = &hot_chunks_.back()[n % kHotPerChunk];
  st.hot->state = static_cast<uint32_t>(n);
  st.cold = std::make_unique<SymbolCold>();
  st.cold->symbol = sym;
  st.key = sym.key();
  states_.push_back(&st);
  sweep_.emplace_back();
  return st;
}

KDataEngine::SymbolState& KDataEngine::state_for(uint32_t key) {
  const Symbol sym = Symbol::from_key(key);
  auto& table = index_[static_cast<int>(sym.market)];
  if (table.empty()) table.assign(kCodesPerMarket, -1);
  int32_t& slot = table[sym.code];
  if (slot < 0) {
    slot = static_cast<int32_t>(states_.size());
    create_state(sym);
  }
  SymbolState& st = *states_[static_cast<size_t>(slot)];
  if (!st.cold->seen) {
    st.cold->seen = true;
    stats_.symbols = ++seen_symbols_;
  }
  return st;
}

KDataEngine::SymbolState* KDataEngine::find_state(Symbol symbol) const {
  const auto& table = index_[static_cast<int>(symbol.market)];
  if (table.empty() || table[symbol.code] < 0) return nullptr;
  return states_[static_cast<size_t>(table[symbol.code])];
}

void KDataEngine::classify_time(TimestampMs t) {
  TimeSlot& slot = time_;
  slot.datetime = t;
  slot.ok = false;
  slot.day = day_of(t);
  if (!config_.calendar.covers(slot.day)) {
    slot.reason = RejectReason::OutsideCalendar;
    return;
  }
  if (slot.day != slot.calendar_day) {
    slot.calendar_day = slot.day;
    slot.calendar_open = config_.calendar.is_trading_day(slot.day);
  }
  if (!slot.calendar_open) {
    slot.reason = RejectReason::NonTradingDay;
    return;
  }
  const int64_t time_of_day = t - start_of_day(slot.day);
  int minute = config_.schedule.trading_minute(time_of_day);
  const bool after_hours = minute == kOutside && config_.schedule.is_after_hours(time_of_day);
  if (minute == kOutside && !after_hours) {
    slot.reason = RejectReason::OutsideSession;
    return;
  }
  slot.minute = after_hours ? config_.schedule.minutes_per_day() - 1 : minute;
  slot.after_hours = after_hours;
  slot.ok = true;
}

IngestResult KDataEngine::process(uint32_t key, const SpotFields& s, TimestampMs not_after, bool changes_only,
                                  SymbolHot*& memo) {
  ++stats_.received;
  if (key >= kMarketCount * kCodesPerMarket) return reject(RejectReason::InvalidSymbol);
  // One range test per field passes every sane spot (NaN fails every comparison); only a
  // spot that fails it goes through the checks that tell the reason.
  const bool in_range = s.open >= 0 && s.open <= kMaxPrice && s.high >= 0 && s.high <= kMaxPrice && s.low >= 0 &&
                        s.low <= kMaxPrice && s.close >= 0 && s.close <= kMaxPrice && s.volume >= 0 &&
                        s.volume <= kMaxVolume && s.amount >= 0 && s.amount <= kMaxAmount;
  if (!in_range || (s.volume > 0 && !(s.close > 0))) {
    if (!valid_number(s.open) || !valid_number(s.high) || !valid_number(s.low) || !valid_number(s.close) ||
        !valid_number(s.volume) || !valid_number(s.amount) || (s.volume > 0 && !(s.close > 0)))
      return reject(RejectReason::InvalidValue);
    return reject(RejectReason::BeyondBounds);
  }
  if (s.datetime > not_after) return reject(RejectReason::AheadOfClock);
  // Calendar and session: once per distinct datetime (the spots of a push share one).
  if (s.datetime != time_.datetime) classify_time(s.datetime);
  if (!time_.ok) return reject(time_.reason);
  const DayNumber day = time_.day;
  const int minute = time_.minute;
  const bool after_hours = time_.after_hours;

  if (!memo) memo = state_for(key).hot;
  SymbolHot& h = *memo;
  if (day < h.day) return reject(RejectReason::OutOfOrder);
  if (day != newest_day_ || minute - newest_minute_ >= 2) {
    if (s.datetime > newest_accepted_) feed_gap_end_ = s.datetime;  // the whole feed was silent (or a new day)
  }
  bool fast = false;
  if (day == h.day) {
    if (s.datetime < h.last_ts) return reject(RejectReason::OutOfOrder);
    if (s.volume < h.last_volume || s.amount < h.last_amount) return reject(RejectReason::CumulativeDecreased);
    if (s.datetime == h.last_ts && s.volume == h.last_volume && s.amount == h.last_amount) {
      if (s.close == h.last_close && s.high == h.last_high && s.low == h.last_low) {
        // A quote repeated unchanged (a source that stamps a quiet symbol with its last
        // trade's time) still tells the symbol did not trade up to the feed's time.
        if (newest_day_ == day && newest_minute_ > h.last_minute) {
          h.last_minute = static_cast<int16_t>(newest_minute_);
          states_[h.state]->heard_ts = newest_accepted_;
        }
        ++stats_.duplicates;
        return IngestResult{IngestOutcome::Duplicate, RejectReason::InvalidSymbol};
      }
      return reject(RejectReason::ConflictingDuplicate);
    }
    // Another spot in the minute of the last one, with every bar of that minute still
    // forming and nothing for advance_to() to catch up: only MIN and DAY change now.
    fast = h.fast && minute == h.fast_minute && !after_hours &&
           !(advanced_day_ > h.day || (advanced_day_ == h.day && advanced_day_over_));
  }
  fast_ = fast;
  if (fast) {
    apply_fast(h, s);
  } else {
    SymbolState& st = *states_[h.state];
    if (day != h.day) {
      if (st.traded) finish_day(st);
      start_day(st, day, minute, s);
    }
    // After hours: once the symbol has traded today, what it trades now is after-hours
    // trading.  A symbol with no trade yet takes the spot as its close (a late start).
    if (after_hours && (st.traded || st.after_hours))
      apply_after_hours(st, s);
    else
      apply(st, minute, s, changes_only);
    if (after_hours && !st.after_hours) {
      st.after_hours = true;
      st.cold->regular_volume = s.volume;
      st.cold->regular_amount = s.amount;
    }
    if (st.traded && advanced_day_ >= st.hot->day) {  // time already passed this spot: catch its symbol up
      if (advanced_day_ > st.hot->day || advanced_day_over_)
        finish_day(st);
      else
        close_through(st, advanced_elapsed_, advanced_completed_);
    }
    if (!after_hours) mark_fast(st, minute);
    lower_sweep_floor(st);
  }
  ++stats_.accepted;
  if (s.datetime > newest_accepted_) {
    newest_accepted_ = s.datetime;
    newest_day_ = day;
    newest_minute_ = minute;
  }
  return IngestResult{IngestOutcome::Accepted, RejectReason::InvalidSymbol};
}

void KDataEngine::mark_fast(SymbolState& st, int minute) const {
  // The next spot in this minute may skip the coarser periods when every period's bar of
  // the minute is the forming one and none has been reported (no amendment is possible).
  st.hot->fast = false;
  if (!st.traded || st.after_hours || st.day_reported) return;
  const TradingSchedule& sched = config_.schedule;
  for (KType k : intraday_) {
    const int idx = ktype_index(k);
    const int b = sched.bucket(k, minute);
    if (st.last_bucket[idx] != b || b <= st.reported[idx]) return;
  }
  st.hot->fast = true;
  st.hot->fast_minute = static_cast<int16_t>(minute);
}

void KDataEngine::apply_fast(SymbolHot& hot, const SpotFields& s) {
  // The same arithmetic as apply() for a spot that lands in the forming bar of every period
  // (no gap: the symbol's last spot was in this minute; not the day's first volume).
  const double dv = s.volume - hot.last_volume;
  const double da = s.amount - hot.last_amount;
  remember_last(hot, s);
  const double price = s.close;
  hot.price = price;
  double hi = price, lo = price;
  if (s.high > hot.ext_high) {
    hi = std::max(hi, s.high);
    hot.ext_high = s.high;
  }
  if (s.low > 0 && s.low < hot.ext_low) {
    lo = std::min(lo, s.low);
    hot.ext_low = s.low;
  }
  if (!intraday_.empty()) {
    hot.pend_high = std::max(hot.pend_high, hi);
    hot.pend_low = std::min(hot.pend_low, lo);
    hot.pend_volume += dv;
    hot.pend_amount += da;
    hot.pending = true;
  }
  if (keep_day_) {
    update_day_bar(hot.day_bar, s, price);
  }
  hot.dirty = true;
}

void KDataEngine::settle(SymbolState& st) {
  // Fold what fast spots added to the minute into the intraday forming bars: they are the
  // bars of the same minute's buckets, so it is the update each spot would have made.
  if (!st.hot->pending) return;
  for (KType k : intraday_) {
    Bar& bar = forming(st, ktype_index(k));
    bar.filled = 0;
    bar.high = std::max(bar.high, st.hot->pend_high);
    bar.low = std::min(bar.low, st.hot->pend_low);
    bar.close = st.hot->price;
    bar.volume += st.hot->pend_volume;
    bar.amount += st.hot->pend_amount;
  }
  st.hot->pend_high = -kInf;
  st.hot->pend_low = kInf;
  st.hot->pend_volume = st.hot->pend_amount = 0;
  st.hot->pending = false;
}

void KDataEngine::update_due(SymbolState& st) {
  // When advance_to() next has work for this symbol: filling a bucket that has begun, or
  // reporting a bucket that is final (see close_through()).
  const TradingSchedule& sched = config_.schedule;
  int fill = kNever, report = kNever;
  for (KType k : intraday_) {
    const int idx = ktype_index(k);
    const int lb = st.last_bucket[idx];
    if (lb < 0) continue;
    if (config_.fill_empty_bars && lb + 1 < sched.buckets_per_day(k))
      fill = std::min(fill, sched.bucket_first_minute(k, lb + 1));
    if (st.reported[idx] < lb) report = std::min(report, sched.bucket_end_minute(k, st.reported[idx] + 1));
  }
  st.fill_due = static_cast<int16_t>(fill);
  st.report_due = static_cast<int16_t>(report);
  sync_sweep(st);
}

void KDataEngine::sync_sweep(const SymbolState& st) {
  SweepEntry& e = sweep_[st.hot->state];
  e.day = st.hot->day;
  e.fill_due = st.fill_due;
  e.report_due = st.report_due;
  e.traded = st.traded;
}

void KDataEngine::lower_sweep_floor(const SymbolState& st) {
  if (!sweep_valid_ || !st.traded) return;
  if (st.hot->day != sweep_day_ || sweep_over_) {
    sweep_valid_ = false;  // the next advance_to() looks at every symbol
    return;
  }
  sweep_fill_floor_ = std::min<int>(sweep_fill_floor_, st.fill_due);
  sweep_report_floor_ = std::min<int>(sweep_report_floor_, st.report_due);
}

void KDataEngine::start_day(SymbolState& st, DayNumber day, int minute, const SpotFields& s) {
  st.hot->day = day;
  st.traded = false;
  st.hot->fast = false;
  st.fill_due = st.report_due = kNever;
  sync_sweep(st);
  st.day_reported = false;
  st.last_bucket.fill(-1);
  st.reported.fill(-1);
  st.cold->bases_day = INT64_MIN;
  st.hot->last_ts = INT64_MIN;
  st.hot->last_close = st.hot->last_high = st.hot->last_low = st.hot->price = 0;
  st.hot->last_minute = -1;
  st.heard_ts = INT64_MIN;
  st.after_hours = false;
  st.cold->gap_volume = st.cold->gap_amount = 0;
  st.cold->gap_spans = st.cold->gap_repaired = 0;
  st.cold->gaps.clear();
  st.cold->regular_volume = st.cold->regular_amount = 0;
  st.cold->after_hours_volume = st.cold->after_hours_amount = 0;
  // Auction and first-minute spots see everything traded so far belong to the first bar.
  // A later first spot that already shows trades has missed bars: what it accumulated is
  // carry-in.  (A later first spot with no volume missed nothing.)
  st.carry = minute > 0 && s.volume > 0;
  if (st.carry) {
    st.cold->carry_volume = s.volume;
    st.cold->carry_amount = s.amount;
    st.hot->ext_high = s.high;
    st.hot->ext_low = s.low > 0 ? s.low : kInf;
    ++stats_.carry_in;
  } else {
    st.cold->carry_volume = st.cold->carry_amount = 0;
    st.hot->ext_high = 0;
    st.hot->ext_low = kInf;
  }
  st.hot->last_volume = st.cold->carry_volume;
  st.hot->last_amount = st.cold->carry_amount;
}

void KDataEngine::apply(SymbolState& st, int minute, const SpotFields& s, bool changes_only) {
  settle(st);
  st.hot->fast = false;
  double dv = s.volume - st.hot->last_volume;
  double da = s.amount - st.hot->last_amount;
  const double prev_close = st.hot->price;
  // A whole trading minute or more passed with no spot of this symbol: what it traded
  // meanwhile cannot be placed in any bar (it may belong to any minute of the span), so
  // like carry-in it goes to DAY only, with the extremes made meanwhile.
  // A feed that sends only changes vouches for the symbol's silence while the feed itself
  // kept talking; then only a silence of the whole feed since the symbol's last spot counts.
  const bool gap = st.hot->last_minute >= 0 && minute - st.hot->last_minute >= 2 && (dv > 0 || da > 0) &&
                   (!changes_only || feed_gap_end_ > std::max(st.heard_ts, st.hot->last_ts));
  const int previous_minute = st.hot->last_minute;
  remember_last(*st.hot, s);
  st.hot->last_minute = static_cast<int16_t>(std::max<int>(st.hot->last_minute, minute));
  st.heard_ts = std::max(st.heard_ts, s.datetime);
  if (!st.traded && !(s.volume > 0)) return;  // nothing has traded today yet: no bar to draw
  st.hot->price = s.close;
  if (gap) {
    if (st.cold->gap_spans++ == 0) ++stats_.gap_volume_days;
    ++stats_.gap_spans;
    st.cold->gap_volume += dv;
    st.cold->gap_amount += da;
    if (st.cold->gaps.size() < kMaxGapSpans) {
      st.cold->gaps.push_back({static_cast<int16_t>(previous_minute), static_cast<int16_t>(minute), dv, da});
    } else {
      auto& merged = st.cold->gaps.back();
      merged.last = static_cast<int16_t>(minute);
      merged.volume += dv;
      merged.amount += da;
    }
    dv = da = 0;
  }

  const double price = s.close;
  double hi = price, lo = price;
  if (s.high > st.hot->ext_high) {
    if (!gap) hi = std::max(hi, s.high);
    st.hot->ext_high = s.high;
  }
  if (s.low > 0 && s.low < st.hot->ext_low) {
    if (!gap) lo = std::min(lo, s.low);
    st.hot->ext_low = s.low;
  }
  // The bar that receives the day's first volume (no carry-in, no gap) also holds the day's open.
  const double first_open = (!st.traded && !st.carry && !gap && s.open > 0) ? s.open : price;
  const TimestampMs day_start = start_of_day(st.hot->day);
  const TradingSchedule& sched = config_.schedule;
  const bool fill = config_.fill_empty_bars;

  for (KType k : intraday_) {
    const int idx = ktype_index(k);
    const int b = sched.bucket(k, minute);
    const int lb = st.last_bucket[idx];
    Bar& bar = forming(st, idx);
    const bool amends = lb >= 0 && b <= st.reported[idx];  // advance_to() closed it ahead of this spot
    if (b == lb) {
      if (amends) ++stats_.amended_bars;
      bar.filled = 0;
      bar.high = std::max(bar.high, hi);
      bar.low = std::min(bar.low, lo);
      bar.close = price;
      bar.volume += dv;
      bar.amount += da;
    } else if (b > lb) {
      if (lb >= 0) {
        st.series[idx].upsert(bar);  // the previous bar is complete
        if (b == lb + 1 && st.reported[idx] == lb - 1) {
          // The common case (the next bucket, nothing closed ahead): the one bar to report is
          // the one just written, reported from here without reading the series back.
          if (sink_) sink_->push_back(CompletedBar{st.key, k, bar});
          st.reported[idx] = static_cast<int16_t>(lb);
        } else {
          if (fill) fill_flat(st, k, b, prev_close);
          report_intraday(st, k, b - 1);
        }
      } else {
        st.series[idx].reserve(st.series[idx].size() + static_cast<size_t>(sched.buckets_per_day(k)));
        st.reported[idx] = static_cast<int16_t>(b - 1);  // nothing before the day's first bar
      }
      double open = lb < 0 ? first_open : price;
      // Minutes of this bucket before the spot were filled flat at the last price, so the
      // bucket opens there: coarse bars stay the exact re-aggregation of MIN bars.
      if (lb >= 0 && fill && minute > sched.bucket_first_minute(k, b)) open = prev_close;
      bar = Bar{day_start + sched.bucket_label(k, b), open, std::max(hi, open), std::min(lo, open), price, dv, da};
      st.last_bucket[idx] = static_cast<int16_t>(b);
    } else {
      // Only after advance_to() closed this bucket ahead of a straggling spot: amend the
      // completed bar where it is.  Every later bar of the day is a flat fill (a real spot
      // there would be newer than this one), so it moves to the new last price.
      if (amends) ++stats_.amended_bars;
      bool inserted = false;
      BarSeries& series = st.series[idx];
      const TimestampMs label = day_start + sched.bucket_label(k, b);
      Bar& done = series.find_or_insert(label, Bar{label, price, hi, lo, price, 0, 0}, &inserted);
      done.filled = 0;
      done.high = std::max(done.high, hi);
      done.low = std::min(done.low, lo);
      done.close = price;
      done.volume += dv;
      done.amount += da;
      const TimestampMs last_label = day_start + sched.bucket_label(k, lb);
      for (size_t j = static_cast<size_t>(&done - series.data()) + 1; j < series.size(); ++j) {
        Bar& flat = series.at(j);
        if (flat.datetime > last_label) break;
        flat.open = flat.high = flat.low = flat.close = price;
      }
      bar.open = bar.high = bar.low = bar.close = price;  // the forming bar is the last flat one
    }
    if (amends) report_amended(st, k, b);
  }
  if (keep_day_) {
    Bar& d = st.hot->day_bar;
    if (!st.traded) d = Bar{start_of_day(st.hot->day), first_open, first_open, first_open, price, 0, 0};
    update_day_bar(d, s, price);
  }
  st.traded = true;
  st.hot->dirty = true;
  update_due(st);
  if (st.day_reported) report_day(st, /*amended=*/true);  // a straggler changed a completed day
}

void KDataEngine::apply_after_hours(SymbolState& st, const SpotFields& s) {
  st.hot->fast = false;
  if (!st.after_hours) {
    st.after_hours = true;
    st.cold->regular_volume = st.hot->last_volume;
    st.cold->regular_amount = st.hot->last_amount;
  }
  const bool first = !(st.cold->after_hours_volume > 0 || st.cold->after_hours_amount > 0);
  st.cold->after_hours_volume = s.volume - st.cold->regular_volume;
  st.cold->after_hours_amount = s.amount - st.cold->regular_amount;
  if (first && (st.cold->after_hours_volume > 0 || st.cold->after_hours_amount > 0)) ++stats_.after_hours_days;
  remember_last(*st.hot, s);
}

void KDataEngine::remember_last(SymbolHot& hot, const SpotFields& s) {
  // What the order, decrease and duplicate checks compare the next spot with.
  hot.last_ts = s.datetime;
  hot.last_volume = s.volume;
  hot.last_amount = s.amount;
  hot.last_close = s.close;
  hot.last_high = s.high;
  hot.last_low = s.low;
}

void KDataEngine::report_amended(SymbolState& st, KType k, int from_bucket) {
  const int idx = ktype_index(k);
  BarSeries& series = st.series[idx];
  series.upsert(forming(st, idx));
  if (!sink_) return;
  const TimestampMs day_start = start_of_day(st.hot->day);
  const TimestampMs first = day_start + config_.schedule.bucket_label(k, from_bucket);
  const TimestampMs last = day_start + config_.schedule.bucket_label(k, st.reported[idx]);
  size_t j = series.size();
  while (j > 0 && series[j - 1].datetime >= first) --j;
  for (; j < series.size() && series[j].datetime <= last; ++j)
    sink_->push_back(CompletedBar{st.key, k, series[j], true});
}

void KDataEngine::flush(SymbolState& st) {
  if (!st.hot->dirty) return;
  settle(st);
  for (KType k : intraday_) {
    const int idx = ktype_index(k);
    if (st.last_bucket[idx] >= 0) st.series[idx].upsert(forming(st, idx));
  }
  if (keep_day_ && st.traded) {
    st.series[ktype_index(KType::DAY)].upsert(st.hot->day_bar);
    if (!multi_day_.empty()) {
      if (st.cold->bases_day != st.hot->day) recompute_period_bases(st);
      for (KType k : multi_day_) {
        const int idx = ktype_index(k);
        Bar p = st.cold->has_period_base[idx] ? combine(st.cold->period_base[idx], st.hot->day_bar) : st.hot->day_bar;
        p.datetime = start_of_day(st.cold->period_label[idx]);
        st.series[idx].upsert(p);
      }
    }
  }
  st.hot->dirty = false;
}

void KDataEngine::finish_day(SymbolState& st) {
  const int all = config_.schedule.minutes_per_day();
  close_through(st, all, all);
  report_day(st);
  flush(st);  // a straggler after the day was reported must reach the series before the next day
}

void KDataEngine::report_intraday(SymbolState& st, KType k, int through) {
  const int idx = ktype_index(k);
  if (through <= st.reported[idx]) return;
  if (sink_) {
    // The bars of buckets reported+1..through are the newest of the series (a forming bar
    // after them at most).  Each bucket has one bar at most, so once as many bars as
    // buckets are found the walk stops: the bar before them (a cold cache line at a minute
    // boundary, where every symbol reports) is not read.
    const BarSeries& series = st.series[idx];
    const TimestampMs day_start = start_of_day(st.hot->day);
    const TimestampMs first = day_start + config_.schedule.bucket_label(k, st.reported[idx] + 1);
    const TimestampMs last = day_start + config_.schedule.bucket_label(k, through);
    const size_t buckets = static_cast<size_t>(through - st.reported[idx]);
    size_t end = series.size();
    while (end > 0 && series[end - 1].datetime > last) --end;
    size_t j = end;
    while (j > 0 && end - j < buckets && series[j - 1].datetime >= first) --j;
    for (; j < end; ++j) sink_->push_back(CompletedBar{st.key, k, series[j]});
  }
  st.reported[idx] = static_cast<int16_t>(through);
}

void KDataEngine::report_day(SymbolState& st, bool amended) {
  if ((st.day_reported && !amended) || !st.traded || !keep_day_) return;
  st.hot->fast = false;
  if (!multi_day_.empty() && st.cold->bases_day != st.hot->day) st.hot->dirty = true;  // labels are computed by flush
  flush(st);
  st.day_reported = true;
  if (!sink_) return;
  sink_->push_back(CompletedBar{st.key, KType::DAY, st.hot->day_bar, amended});
  if (multi_day_.empty()) return;
  // A longer period is complete when the next trading day belongs to another one; past the
  // calendar's coverage no next day is known and the period counts as complete (as period_label
  // caps its label at the coverage).
  const std::optional<DayNumber> next = config_.calendar.next_trading_day(st.hot->day);
  for (KType k : multi_day_) {
    if (next && period_start(k, *next) == period_start(k, st.hot->day)) continue;
    const int idx = ktype_index(k);
    const BarSeries& series = st.series[idx];
    const TimestampMs label = start_of_day(st.cold->period_label[idx]);
    for (size_t j = series.size(); j > 0; --j) {
      if (series[j - 1].datetime == label) {
        sink_->push_back(CompletedBar{st.key, k, series[j - 1], amended});
        break;
      }
      if (series[j - 1].datetime < label) break;
    }
  }
}

void KDataEngine::recompute_period_bases(SymbolState& st) {
  const BarSeries& days = st.series[ktype_index(KType::DAY)];
  const TimestampMs today = start_of_day(st.hot->day);
  for (KType k : multi_day_) {
    const int idx = ktype_index(k);
    const DayNumber first_day = period_start(k, st.hot->day);
    const TimestampMs period_begin = start_of_day(first_day);
    const TimestampMs period_after = start_of_day(period_end(k, st.hot->day) + 1);
    st.cold->period_label[idx] = period_label(k, st.hot->day, config_.calendar);
    const TimestampMs label = start_of_day(st.cold->period_label[idx]);
    if (st.cold->period_history_start[idx] != first_day) {
      st.cold->period_history_start[idx] = first_day;
      st.cold->period_history[idx] = Bar{};
    }
    // Bars of this period under another label come from history (the engine writes only
    // `label`).  One labelled before today covers the period's days up to its label (a
    // vendor's week so far): live bars continue it.  One labelled today or later already
    // holds today, which the live DAY bar supersedes.  Either way one bar remains.
    BarSeries& series = st.series[idx];
    size_t lo = series.size();
    while (lo > 0 && series[lo - 1].datetime >= period_begin) --lo;
    size_t hi = lo;
    while (hi < series.size() && series[hi].datetime < period_after) ++hi;
    for (size_t j = lo; j < hi; ++j) {
      const Bar& b = series[j];
      if (b.datetime == label) continue;
      if (b.datetime < today) {
        if (b.datetime > st.cold->period_history[idx].datetime) st.cold->period_history[idx] = b;
        ++stats_.period_history_merged;
      } else {
        ++stats_.period_history_replaced;
      }
    }
    if (hi > lo) {
      size_t keep = lo;  // compact [lo, hi) down to the bar at `label`, if any
      for (size_t j = lo; j < hi; ++j)
        if (series[j].datetime == label) keep = j;
      const bool has_label = keep < hi && series[keep].datetime == label;
      if (has_label) {
        series.erase(keep + 1, hi);
        series.erase(lo, keep);
      } else {
        series.erase(lo, hi);
      }
    }
    // The base: the history bar, then the DAY bars after it and before today, in order.
    const bool has_history = st.cold->period_history[idx].datetime != 0;
    const TimestampMs days_from = has_history ? st.cold->period_history[idx].datetime + 1 : period_begin;
    size_t i = days.size();
    while (i > 0 && days[i - 1].datetime >= today) --i;
    const size_t end = i;
    while (i > 0 && days[i - 1].datetime >= days_from) --i;
    st.cold->has_period_base[idx] = has_history || i < end;
    if (st.cold->has_period_base[idx]) {
      Bar acc = has_history ? st.cold->period_history[idx] : days[i++];
      for (size_t j = i; j < end; ++j) acc = combine(acc, days[j]);
      st.cold->period_base[idx] = acc;
    }
  }
  st.cold->bases_day = st.hot->day;
}

void KDataEngine::fill_flat(SymbolState& st, KType k, int bucket_exclusive, double price) {
  const int idx = ktype_index(k);
  const int lb = st.last_bucket[idx];
  if (lb < 0 || bucket_exclusive <= lb + 1) return;
  const double c = price;
  const TimestampMs day_start = start_of_day(st.hot->day);
  BarSeries& series = st.series[idx];
  for (int b = lb + 1; b < bucket_exclusive; ++b) {
    forming(st, idx) = Bar{day_start + config_.schedule.bucket_label(k, b), c, c, c, c, 0, 0, 1};
    series.upsert(forming(st, idx));
    ++stats_.filled_bars;
  }
  st.last_bucket[idx] = static_cast<int16_t>(bucket_exclusive - 1);
}

void KDataEngine::close_through(SymbolState& st, int elapsed, int completed) {
  // Runs for every symbol on every advance_to(), so it first checks, without touching the
  // series, whether any period has a bucket to fill or to report; most calls have none.
  const TradingSchedule& sched = config_.schedule;
  settle(st);
  for (KType k : intraday_) {
    const int idx = ktype_index(k);
    const int lb = st.last_bucket[idx];
    if (lb < 0) continue;
    const int count = sched.buckets_per_day(k);
    const bool to_fill = config_.fill_empty_bars && lb + 1 < count && sched.bucket_first_minute(k, lb + 1) < elapsed;
    const int next_report = st.reported[idx] + 1;
    const bool to_report = next_report < count && sched.bucket_end_minute(k, next_report) <= completed;
    if (!to_fill && !to_report) continue;
    st.hot->fast = false;
    st.series[idx].upsert(forming(st, idx));  // the forming bar, as it stands, into its series
    if (to_fill) {
      // Every bucket that has begun (its first minute is over) gets its bar, flat at the
      // last price: for MIN that is exactly the elapsed minutes, and a coarser bucket
      // already holding flat minutes has its forming bar, so coarse bars stay the MIN
      // re-aggregation.
      int b = lb + 1;
      while (b < count && sched.bucket_first_minute(k, b) < elapsed) ++b;
      fill_flat(st, k, b, st.hot->price);
    }
    int through = st.reported[idx];
    while (through + 1 < count && sched.bucket_end_minute(k, through + 1) <= completed) ++through;
    report_intraday(st, k, std::min<int>(through, st.last_bucket[idx]));
  }
  update_due(st);
}

void KDataEngine::advance_to(TimestampMs now, CompletedBars* completed) {
  std::lock_guard<std::mutex> lock(mutex_);
  sink_ = completed;
  const DayNumber day = day_of(now);
  const int64_t t = now - start_of_day(day);
  const bool day_over = t >= config_.schedule.day_close_ms();
  const int elapsed = config_.schedule.elapsed_minutes(t);
  const int final_minutes = config_.schedule.completed_minutes(t);
  if (now > advanced_) {
    advanced_ = now;
    advanced_day_ = day;
    advanced_day_over_ = day_over;
    advanced_elapsed_ = elapsed;
    advanced_completed_ = final_minutes;
  }
  // Most calls (a publisher's cycle inside a minute) have nothing to do for any symbol.
  if (sweep_valid_ && day == sweep_day_ &&
      (day_over ? sweep_over_ : (elapsed <= sweep_fill_floor_ && final_minutes < sweep_report_floor_))) {
    sink_ = nullptr;
    return;
  }
  int fill_floor = kNever, report_floor = kNever;
  // The dense sweep_ entries tell which states have work; only those are touched.
  for (size_t i = 0; i < states_.size(); ++i) {
    const SweepEntry& e = sweep_[i];
    if (!e.traded || e.day > day) continue;
    if (e.day < day || day_over)
      finish_day(*states_[i]);
    else if (elapsed > e.fill_due || final_minutes >= e.report_due)
      close_through(*states_[i], elapsed, final_minutes);
    if (e.day == day) {  // e is up to date: finish_day and close_through end in update_due
      fill_floor = std::min<int>(fill_floor, e.fill_due);
      report_floor = std::min<int>(report_floor, e.report_due);
    }
  }
  sweep_valid_ = true;
  sweep_day_ = day;
  sweep_over_ = day_over;
  sweep_fill_floor_ = fill_floor;
  sweep_report_floor_ = report_floor;
  sink_ = nullptr;
}

IngestResult KDataEngine::ingest(const Spot& spot, CompletedBars* completed) {
  std::lock_guard<std::mutex> lock(mutex_);
  sink_ = completed;
  SymbolHot* memo = nullptr;
  const IngestResult r = process(spot.symbol.key(), fields_of(spot), INT64_MAX, false, memo);
  sink_ = nullptr;
  return r;
}

size_t KDataEngine::ingest(const Spot* const* spots, size_t n, CompletedBars* completed) {
  std::lock_guard<std::mutex> lock(mutex_);
  sink_ = completed;
  size_t accepted = 0;
  for (size_t i = 0; i < n; ++i) {
    const Spot& s = *spots[i];
    SymbolHot* memo = nullptr;
    accepted += process(s.symbol.key(), fields_of(s), INT64_MAX, false, memo).outcome == IngestOutcome::Accepted;
  }
  sink_ = nullptr;
  return accepted;
}

size_t KDataEngine::ingest_columns(const SpotColumns& c, CompletedBars* completed) {
  std::lock_guard<std::mutex> lock(mutex_);
  sink_ = completed;
  size_t accepted = 0;
  if (memo_keys_.size() < c.n) {
    memo_keys_.resize(c.n, kInvalidSymbolKey);
    memo_states_.resize(c.n, nullptr);
    memo_full_.resize(c.n, nullptr);
  }
  // A feed lists the same symbols in the same order every push, so the states rows ahead
  // are known: fetch their hot lines early, and when the spots have started to take the
  // slow path (a new minute: every symbol's bars move on), their other bar state too.
  constexpr size_t kAhead = 16;
  bool slow = false;
  int buckets_minute = -1;  // the minute buckets_now holds each intraday period's bucket of
  std::array<int16_t, kIntradayCount> buckets_now{};
  for (size_t i = 0; i < c.n; ++i) {
    if (i + kAhead < c.n && memo_keys_[i + kAhead] == c.symbol_keys[i + kAhead] && memo_states_[i + kAhead]) {
      prefetch_lines(memo_states_[i + kAhead], sizeof(SymbolHot));
      if (slow) prefetch_lines(memo_full_[i + kAhead], offsetof(SymbolState, series) + kIntradayCount * sizeof(BarSeries));
    }
    const size_t near = i + kAhead / 2;
    if (slow && near < c.n && memo_keys_[near] == c.symbol_keys[near] && memo_full_[near]) {
      // Where the bars this row completes go: a store that misses the cache (and the TLB: each
      // series is a block of its own) costs more than the rest of the row, so the next slot of
      // each period whose bucket the row's minute ends is fetched ahead.  The row's minute is
      // known when it shares the datetime just classified (a push's rows do).
      const SymbolState& ahead = *memo_full_[near];
      if (c.datetime[near] == time_.datetime && time_.ok) {
        if (buckets_minute != time_.minute) {
          buckets_minute = time_.minute;
          for (size_t j = 0; j < intraday_.size(); ++j)
            buckets_now[j] = static_cast<int16_t>(config_.schedule.bucket(intraday_[j], time_.minute));
        }
        for (size_t j = 0; j < intraday_.size(); ++j) {
          const int idx = ktype_index(intraday_[j]);
          if (ahead.last_bucket[idx] != buckets_now[j]) {
            const BarSeries& series = ahead.series[idx];
            prefetch_lines(series.data() + series.size(), sizeof(Bar));
          }
        }
      } else {
        const BarSeries& minutes = ahead.series[0];
        prefetch_lines(minutes.data() + minutes.size(), sizeof(Bar));  // where the completed minute goes
      }
    }
    const SpotFields f{c.datetime[i], c.open ? c.open[i] : 0.0, c.high ? c.high[i] : 0.0, c.low ? c.low[i] : 0.0,
                       c.close[i],    c.volume[i],             c.amount[i]};
    const uint32_t key = c.symbol_keys[i];
    if (memo_keys_[i] != key) {  // another symbol than the last call's row i
      memo_keys_[i] = key;
      memo_states_[i] = nullptr;
      memo_full_[i] = nullptr;
    }
    accepted += process(key, f, c.not_after, c.changes_only, memo_states_[i]).outcome == IngestOutcome::Accepted;
    slow = !fast_;
    if (!memo_full_[i] && memo_states_[i]) memo_full_[i] = states_[memo_states_[i]->state];
  }
  sink_ = nullptr;
  return accepted;
}

void KDataEngine::check_enabled(KType k) const {
  if (enabled_[ktype_index(k)]) return;
  std::string names;
  for (KType e : enabled_ktypes()) names += std::string(names.empty() ? "" : ", ") + ktype_name(e);
  throw std::invalid_argument(std::string("ktype ") + ktype_name(k) + " is not enabled in this agent (enabled: " +
                              names + ")");
}

void KDataEngine::preload(Symbol symbol, KType k, const Bar* bars, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const Bar& b = bars[i];
    if (i > 0 && b.datetime <= bars[i - 1].datetime)
      throw std::invalid_argument("history bars must be sorted by datetime with no repeated datetime (row " +
                                  std::to_string(i) + ")");
    if (!std::isfinite(b.open) || !std::isfinite(b.high) || !std::isfinite(b.low) || !std::isfinite(b.close) ||
        !std::isfinite(b.volume) || !std::isfinite(b.amount))
      throw std::invalid_argument("history bar at row " + std::to_string(i) + " has a non-finite value");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  check_enabled(k);
  SymbolState& st = state_for(symbol.key());
  BarSeries& series = st.series[ktype_index(k)];
  series.reserve(series.size() + n);
  for (size_t i = 0; i < n; ++i) {
    bool inserted = false;
    series.find_or_insert(bars[i].datetime, bars[i], &inserted);  // an existing bar wins
  }
  if (k == KType::DAY || is_multi_day(k)) {  // today's WEEK..YEAR bars are rebuilt on the new history
    st.cold->bases_day = INT64_MIN;
    st.hot->dirty = st.traded;
  }
}

std::vector<Bar> KDataEngine::bars(Symbol symbol, KType k) {
  std::lock_guard<std::mutex> lock(mutex_);
  check_enabled(k);
  SymbolState* st = find_state(symbol);
  if (!st) return {};
  flush(*st);
  return st->series[ktype_index(k)].copy();
}

std::pair<std::shared_ptr<const BarSeries::Buffer>, size_t> KDataEngine::share_bars(Symbol symbol, KType k) {
  std::lock_guard<std::mutex> lock(mutex_);
  check_enabled(k);
  SymbolState* st = find_state(symbol);
  if (!st) return {nullptr, 0};
  flush(*st);
  const BarSeries& s = st->series[ktype_index(k)];
  return {s.share(), s.size()};
}

std::optional<CarryIn> KDataEngine::carry_in(Symbol symbol) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const SymbolState* st = find_state(symbol);
  if (!st || st->hot->day == INT64_MIN) return std::nullopt;
  return CarryIn{st->hot->day, st->cold->carry_volume, st->cold->carry_amount};
}

KDataEngine::GapRepair KDataEngine::repair_gaps(Symbol symbol, const Bar* source, size_t n,
                                                CompletedBars* completed) {
  std::lock_guard<std::mutex> lock(mutex_);
  GapRepair out;
  SymbolState* st = find_state(symbol);
  if (!st || !st->traded || st->cold->gaps.empty()) return out;
  if (!enabled_[ktype_index(KType::MIN)] || !config_.fill_empty_bars) {
    out.pending = static_cast<uint32_t>(st->cold->gaps.size());
    return out;
  }
  sink_ = completed;
  settle(*st);
  st->hot->fast = false;
  const TradingSchedule& sched = config_.schedule;
  const TimestampMs day_start = start_of_day(st->hot->day);
  std::vector<const Bar*> by_minute(static_cast<size_t>(sched.minutes_per_day()), nullptr);
  for (size_t i = 0; i < n; ++i) {
    const int64_t tod = source[i].datetime - day_start;
    if (tod <= 0 || tod >= kMsPerDay) continue;  // another day
    const int m = sched.trading_minute(tod);
    if (m != kOutside && sched.bucket_label(KType::MIN, m) == tod) by_minute[static_cast<size_t>(m)] = &source[i];
  }
  const int min_idx = ktype_index(KType::MIN);
  st->series[min_idx].upsert(forming(*st, min_idx));  // the forming minute, as it stands
  std::vector<SymbolCold::GapSpan> kept;
  for (const auto& span : st->cold->gaps) {
    if (span.last > st->reported[min_idx]) {  // its last minute may still change
      ++out.pending;
      kept.push_back(span);
    } else if (repair_span(*st, span.first, span.last, span.volume, span.amount, by_minute)) {
      ++out.repaired;
      out.volume += span.volume;
      out.amount += span.amount;
    } else {
      ++out.mismatched;
      kept.push_back(span);
    }
  }
  st->cold->gaps.swap(kept);
  st->hot->dirty = true;
  sink_ = nullptr;
  return out;
}

bool KDataEngine::repair_span(SymbolState& st, int first, int last, double volume, double amount,
                              const std::vector<const Bar*>& source) {
  const TradingSchedule& sched = config_.schedule;
  const TimestampMs day_start = start_of_day(st.hot->day);
  BarSeries& minutes = st.series[ktype_index(KType::MIN)];
  auto find = [&](int m) -> const Bar* {
    const TimestampMs label = day_start + sched.bucket_label(KType::MIN, m);
    const Bar* it = std::lower_bound(minutes.data(), minutes.data() + minutes.size(), label,
                                     [](const Bar& b, TimestampMs t) { return b.datetime < t; });
    return it != minutes.data() + minutes.size() && it->datetime == label ? it : nullptr;
  };
  // What the gap traded in each minute: the source's minute less what the engine's bar holds.
  const double tolerance_v = 1e-6 * std::max(1.0, volume), tolerance_a = 1e-6 * std::max(1.0, amount) + 1e-6;
  std::vector<double> dv, da;
  double sum_v = 0, sum_a = 0;
  for (int m = first; m <= last; ++m) {
    const Bar* s = source[static_cast<size_t>(m)];
    const Bar* b = find(m);
    const double v = (s ? s->volume : 0) - (b ? b->volume : 0);
    const double a = (s ? s->amount : 0) - (b ? b->amount : 0);
    if (v < -tolerance_v || a < -tolerance_a) {
      ++stats_.gap_repair_mismatches;
      return false;
    }
    dv.push_back(std::max(0.0, v));
    da.push_back(std::max(0.0, a));
    sum_v += dv.back();
    sum_a += da.back();
  }
  if (std::fabs(sum_v - volume) > tolerance_v || std::fabs(sum_a - amount) > tolerance_a) {
    ++stats_.gap_repair_mismatches;
    return false;
  }
  // Rebuild the span's minutes.  Inside it the engine saw no spot, so a minute the gap traded
  // in is the source's bar and one it did not is flat at the close before it; the two ends
  // keep what their spots gave and add the gap's part.
  const int min_idx = ktype_index(KType::MIN);
  const Bar* before = first > 0 ? find(first - 1) : nullptr;
  double close = before ? before->close : 0;
  for (int m = first; m <= last; ++m) {
    const size_t i = static_cast<size_t>(m - first);
    const Bar* s = source[static_cast<size_t>(m)];
    const TimestampMs label = day_start + sched.bucket_label(KType::MIN, m);
    const bool traded = s && (dv[i] > 0 || da[i] > 0);
    const Bar* existing = find(m);
    if (!existing && !traded && !(close > 0)) continue;  // before the day's first trade: no bar
    const bool end = (m == first || m == last) && existing && !existing->filled;
    bool inserted = false;
    Bar& bar = minutes.find_or_insert(label, Bar{label, close, close, close, close, 0, 0, 1}, &inserted);
    if (end) {
      if (traded) {
        bar.high = std::max(bar.high, s->high);
        bar.low = std::min(bar.low, s->low);
        if (m == first) bar.close = s->close;  // its last trade came after the spot
        if (m == last) bar.open = s->open;     // its first trade came before the spot
        bar.volume += dv[i];
        bar.amount += da[i];
      }
    } else if (traded) {
      bar = Bar{label, s->open, s->high, s->low, s->close, s->volume, s->amount, 0};
    } else if (close > 0) {
      bar = Bar{label, close, close, close, close, 0, 0, 1};
    }
    close = bar.close;
    if (m == st.last_bucket[min_idx]) forming(st, min_idx) = bar;
    if (m <= st.reported[min_idx] && sink_) sink_->push_back(CompletedBar{st.key, KType::MIN, bar, true});
  }
  for (KType k : intraday_) {
    if (k == KType::MIN) continue;
    for (int b = sched.bucket(k, first); b <= sched.bucket(k, last); ++b) reaggregate(st, k, b);
  }
  st.cold->gap_volume -= volume;
  st.cold->gap_amount -= amount;
  ++st.cold->gap_repaired;
  ++stats_.gap_spans_repaired;
  return true;
}

void KDataEngine::reaggregate(SymbolState& st, KType k, int bucket) {
  // A coarse bar is the re-aggregation of its MIN bars (flat ones included).
  const TradingSchedule& sched = config_.schedule;
  const TimestampMs day_start = start_of_day(st.hot->day);
  const BarSeries& minutes = st.series[ktype_index(KType::MIN)];
  const TimestampMs from = day_start + sched.bucket_label(KType::MIN, sched.bucket_first_minute(k, bucket));
  const TimestampMs to = day_start + sched.bucket_label(k, bucket);
  const Bar* it = std::lower_bound(minutes.data(), minutes.data() + minutes.size(), from,
                                   [](const Bar& b, TimestampMs t) { return b.datetime < t; });
  bool any = false, all_filled = true;
  Bar acc{};
  for (; it != minutes.data() + minutes.size() && it->datetime <= to; ++it) {
    acc = any ? combine(acc, *it) : *it;
    all_filled = all_filled && it->filled;
    any = true;
  }
  if (!any) return;
  acc.datetime = to;
  acc.filled = all_filled ? 1 : 0;
  const int idx = ktype_index(k);
  st.series[idx].upsert(acc);
  if (bucket == st.last_bucket[idx]) forming(st, idx) = acc;
  if (bucket <= st.reported[idx] && sink_) sink_->push_back(CompletedBar{st.key, k, acc, true});
}

std::optional<DayTotals> KDataEngine::day_totals(Symbol symbol) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const SymbolState* st = find_state(symbol);
  if (!st || st->hot->day == INT64_MIN) return std::nullopt;
  return DayTotals{st->hot->day,        st->cold->carry_volume,
                   st->cold->carry_amount,
                   st->cold->gap_volume, st->cold->gap_amount,
                   st->cold->gap_spans - st->cold->gap_repaired,
                   st->cold->after_hours_volume, st->cold->after_hours_amount};
}

std::vector<Symbol> KDataEngine::symbols() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Symbol> out;
  out.reserve(states_.size());
  for (const SymbolState* st : states_)
    if (st->cold->seen) out.push_back(st->cold->symbol);
  std::sort(out.begin(), out.end());
  return out;
}

size_t KDataEngine::memory_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t bytes = sizeof(*this) + states_.capacity() * sizeof(states_[0]) + sweep_.capacity() * sizeof(SweepEntry) +
                 chunks_.size() * kStatesPerChunk * sizeof(SymbolState) +
                 hot_chunks_.size() * kHotPerChunk * sizeof(SymbolHot) +
                 memo_keys_.capacity() * (sizeof(uint32_t) + sizeof(SymbolState*));
  for (const auto& table : index_) bytes += table.capacity() * sizeof(int32_t);
  for (const SymbolState* st : states_) {
    bytes += sizeof(SymbolCold) + st->cold->gaps.capacity() * sizeof(SymbolCold::GapSpan);
    for (const BarSeries& series : st->series) bytes += series.capacity_bytes();
  }
  return bytes;
}

void KDataEngine::reserve(const uint32_t* keys, size_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (states_.capacity() < states_.size() + n) states_.reserve(states_.size() + n);
  for (size_t i = 0; i < n; ++i) {
    if (keys[i] >= kMarketCount * kCodesPerMarket) continue;
    const Symbol sym = Symbol::from_key(keys[i]);
    auto& table = index_[static_cast<int>(sym.market)];
    if (table.empty()) table.assign(kCodesPerMarket, -1);
    int32_t& slot = table[sym.code];
    if (slot < 0) {
      slot = static_cast<int32_t>(states_.size());
      create_state(sym);
    }
    reserve_day(*states_[static_cast<size_t>(slot)]);
  }
}

void KDataEngine::reserve_next_day() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (SymbolState* st : states_) reserve_day(*st);
}

void KDataEngine::reserve_day(SymbolState& st) {
  // Room for one more day: the intraday periods' bars, and one bar of DAY..YEAR.
  const TradingSchedule& sched = config_.schedule;
  for (KType k : intraday_) {
    BarSeries& series = st.series[ktype_index(k)];
    series.reserve(series.size() + static_cast<size_t>(sched.buckets_per_day(k)));
  }
  if (keep_day_) {
    BarSeries& days = st.series[ktype_index(KType::DAY)];
    days.reserve(days.size() + 1);
  }
  for (KType k : multi_day_) {
    BarSeries& series = st.series[ktype_index(k)];
    series.reserve(series.size() + 1);
  }
}

TimestampMs KDataEngine::newest_accepted() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return newest_accepted_;
}

EngineStats KDataEngine::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace hkrt
