// KDataEngine: turns a stream of spots into bars of every enabled period.
//
// The rules (docs/aggregation.md states them with worked examples):
//  * A spot is accepted only on a trading day of the injected calendar and inside a
//    session (opening auction and the close's grace included); "today" is the spot's own
//    date, never the machine's clock.
//  * Per symbol, spots must not go back in time, nor their cumulative volume/amount
//    within a day.  A repeat of the last accepted spot is a duplicate and changes nothing;
//    one with the same time and totals but other prices is rejected (prices move only by
//    trades, so it is not newer), which keeps re-ingestion from changing any bar.
//  * Intraday bar volume/amount are differences of the cumulative day totals.  The day's
//    first spot, when it arrives after the first minute, is carry-in: what it had already
//    accumulated is in the DAY bar but in no intraday bar.  So is gap volume, what a symbol
//    traded while no spot of it came for a whole minute or more: it cannot be placed in a
//    bar, so it is kept out of every intraday bar and counted.
//  * A spot stamped T closes the minute ending at T ((t-1min, t]); spots stamped after the
//    close up to the close cutoff (late closing-auction prints) count in the last minute;
//    later ones are after hours: counted separately, in no bar and not in DAY.
//  * Coarser intraday periods equal the re-aggregation of the MIN bars (empty minutes
//    filled as flat zero-volume bars at the last price).
//  * DAY comes from the spot's day OHLC and totals; WEEK..YEAR are exact aggregates of
//    the DAY bars of their period (continuing a preloaded bar of the period), labelled by
//    the period's last trading day.
//  * A completed bar that a late spot changes is reported again, marked amended.
//
// Thread-safety: every public member takes the engine's mutex.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "bar_series.h"
#include "calendar.h"
#include "ktype.h"
#include "schedule.h"
#include "spot.h"
#include "symbol.h"

namespace hkrt {

enum class RejectReason : uint8_t {
  InvalidSymbol,        // not a SH/SZ/BJ six-digit code
  InvalidValue,         // NaN, infinite or negative field, or volume with no price
  NonTradingDay,        // weekend or exchange holiday
  OutsideSession,       // before the opening auction, in the lunch break, after the close's grace
  OutOfOrder,           // older than the symbol's last accepted spot
  CumulativeDecreased,  // same day, lower cumulative volume or amount than already accepted
  ConflictingDuplicate, // same time and totals as the last accepted spot, other prices: no trade can explain it
  OutsideCalendar,      // a day the calendar's holiday table does not cover (it cannot say whether it trades)
  BeyondBounds,         // a price, volume or amount no A-share can reach (kMaxPrice, kMaxVolume, kMaxAmount)
  AheadOfClock,         // dated later than the message was sent, beyond the allowed margin (a live feed only)
};
constexpr int kRejectReasonCount = 10;

// Physical bounds of one spot.  The largest A-share price has stayed below 3,000 yuan and
// index levels below 20,000; the busiest whole-market day traded about 3.5 trillion yuan.
// A value past these is corruption (a unit slip, a flipped bit, 2**63), and accepting it
// would make every later spot of the day look like a decrease.
constexpr double kMaxPrice = 1e6;    // yuan
constexpr double kMaxVolume = 1e12;  // shares, cumulative for a day
constexpr double kMaxAmount = 1e13;  // yuan, cumulative for a day
const char* reject_reason_name(RejectReason r);

enum class IngestOutcome : uint8_t { Accepted, Duplicate, Rejected };

struct IngestResult {
  IngestOutcome outcome;
  RejectReason reason;  // meaningful only when outcome == Rejected
};

struct EngineStats {
  uint64_t received = 0;
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
  std::array<uint64_t, kRejectReasonCount> rejected{};
  uint64_t carry_in = 0;      // symbol-days whose first spot came after the first minute
  uint64_t filled_bars = 0;   // flat bars created for periods without spots
  uint64_t amended_bars = 0;  // completed bars a late spot changed afterwards (advance_to ran ahead)
  uint64_t gap_spans = 0;        // spans of a whole minute or more in which a symbol's volume grew unseen
  uint64_t gap_spans_repaired = 0;  // of them, placed into their minutes from a source's minute bars
  uint64_t gap_repair_mismatches = 0;  // repairs refused: the source's minutes did not add up to the span
  uint64_t gap_volume_days = 0;  // symbol-days with gap volume
  uint64_t after_hours_days = 0;  // symbol-days with after-hours volume
  uint64_t period_history_merged = 0;    // preloaded WEEK..YEAR bars continued by live bars of their period
  uint64_t period_history_replaced = 0;  // preloaded WEEK..YEAR bars that already held today, rebuilt instead
  uint64_t symbols = 0;
  uint64_t rejected_total() const {
    uint64_t n = 0;
    for (uint64_t r : rejected) n += r;
    return n;
  }
};

struct EngineConfig {
  std::vector<KType> ktypes{kAllKTypes.begin(), kAllKTypes.end()};
  TradingSchedule schedule = TradingSchedule::china_a_share();
  TradingCalendar calendar;
  bool fill_empty_bars = true;
};

// Columnar input: n rows, one array per field.  symbol_keys holds Symbol::key() values,
// or kInvalidSymbolKey for a row whose symbol could not be parsed.  open/high/low may be
// null (the day's values are then taken as unknown).
struct SpotColumns {
  size_t n = 0;
  const uint32_t* symbol_keys = nullptr;
  const int64_t* datetime = nullptr;
  const double* open = nullptr;
  const double* high = nullptr;
  const double* low = nullptr;
  const double* close = nullptr;
  const double* volume = nullptr;
  const double* amount = nullptr;
  // Spots dated after this (exchange-local ms) are rejected as AheadOfClock: the live wire
  // path sets it from the message's send time plus a margin.  No limit by default.
  TimestampMs not_after = INT64_MAX;
  // The feed sends a symbol only when it changed (QMT's whole-quote push): a symbol's
  // silence then means no trade, so its volume is gap volume only when the feed itself
  // was silent for a whole minute or more since the symbol's last spot.
  bool changes_only = false;
};
constexpr uint32_t kInvalidSymbolKey = 0xFFFFFFFFu;

// A bar that is final: no spot can change it any more (a later bucket began, or
// advance_to() passed its end, grace included).  WEEK..YEAR complete with the last
// trading day of their period, DAY with its day.
struct CompletedBar {
  uint32_t symbol_key;
  KType ktype;
  Bar bar;
  bool amended = false;  // reported before; a late spot changed it
};
using CompletedBars = std::vector<CompletedBar>;

// Carry-in of one symbol-day: what had traded before the first spot the engine saw.
struct CarryIn {
  DayNumber day;
  double volume;
  double amount;
};

// What one symbol-day's DAY bar holds beyond its intraday bars, and what is in no bar:
// Σ intraday volume = DAY volume - carry-in - gap volume; after-hours volume is outside DAY.
struct DayTotals {
  DayNumber day;
  double carry_volume, carry_amount;  // traded before the first spot (a late start)
  double gap_volume, gap_amount;      // traded while no spot came for a whole minute or more
  uint32_t gap_spans;                 // spans of such volume not repaired
  double after_hours_volume, after_hours_amount;  // traded after the close cutoff
};

class KDataEngine {
 public:
  struct SymbolHot;  // a symbol's per-spot state (engine.cpp); public only to be prefetched there
  explicit KDataEngine(EngineConfig config = EngineConfig());
  ~KDataEngine();
  KDataEngine(const KDataEngine&) = delete;
  KDataEngine& operator=(const KDataEngine&) = delete;

  // Every ingest/advance call appends the bars it completed to `completed` when given.
  IngestResult ingest(const Spot& spot, CompletedBars* completed = nullptr);
  // Ingests spots[0..n) in order; returns how many were accepted.
  size_t ingest(const Spot* const* spots, size_t n, CompletedBars* completed = nullptr);
  size_t ingest_columns(const SpotColumns& columns, CompletedBars* completed = nullptr);

  // Time has reached `now` (for example, a publisher's cycle ended): every traded symbol
  // of that day gets flat bars, at its last price, for the minutes that ended with no spot
  // (and a coarser period whose first minute ended gets its forming bar); symbols last
  // seen on an earlier day get that day completed.
  void advance_to(TimestampMs now, CompletedBars* completed = nullptr);

  // Adds history bars (sorted by datetime, strictly increasing).  Bars the engine already
  // holds win over history bars with the same label.
  void preload(Symbol symbol, KType ktype, const Bar* bars, size_t n);

  bool is_enabled(KType k) const { return enabled_[ktype_index(k)]; }
  std::vector<KType> enabled_ktypes() const;
  std::vector<Bar> bars(Symbol symbol, KType ktype);
  // The series' buffer and the number of bars in it now (for a zero-copy view).
  std::pair<std::shared_ptr<const BarSeries::Buffer>, size_t> share_bars(Symbol symbol, KType ktype);
  std::optional<CarryIn> carry_in(Symbol symbol) const;
  std::optional<DayTotals> day_totals(Symbol symbol) const;

  // Places the symbol's gap volume of its current day into the minutes it traded in, from a
  // source's MIN bars of that day (right labels, sorted; minutes without a bar had no trade).
  // A span is repaired only when its last minute is final and the source's minutes, less
  // what the engine's own bars already hold, add up to it exactly; the MIN bars of the span
  // and the coarser bars over it are then rebuilt and reported again (amended).  Needs MIN
  // enabled and flat filling on.
  struct GapRepair {
    uint32_t repaired = 0, mismatched = 0, pending = 0;
    double volume = 0, amount = 0;
  };
  GapRepair repair_gaps(Symbol symbol, const Bar* source, size_t n, CompletedBars* completed = nullptr);
  std::vector<Symbol> symbols() const;
  EngineStats stats() const;
  // The latest datetime of any spot accepted so far (INT64_MIN before the first): the
  // market's own clock, which a message header's market time is checked against.
  TimestampMs newest_accepted() const;
  // Bytes the engine holds: symbol states, bar buffers (by capacity) and symbol index tables.
  size_t memory_bytes() const;
  // Pre-sizes the engine for a trading day of these symbols (the universe, or yesterday's
  // symbols): their states are created and every intraday series gets room for one more
  // day of bars, so the day's first spots allocate nothing.  A symbol reserved but never
  // fed is not listed by symbols() nor counted in stats().symbols.  Invalid keys are skipped.
  void reserve(const uint32_t* symbol_keys, size_t n);
  // As above, for every symbol the engine already holds (call it after a day closed).
  void reserve_next_day();
  const TradingCalendar& calendar() const { return config_.calendar; }
  const TradingSchedule& schedule() const { return config_.schedule; }

 private:
  struct SymbolState;

  struct SymbolCold;
  static Bar& forming(SymbolState& st, int ktype_idx);
  // What a datetime means, computed once for all spots that share it (a push's spots do).
  struct TimeSlot {
    TimestampMs datetime = INT64_MIN;
    DayNumber day = 0;
    int minute = 0;
    bool after_hours = false;
    bool ok = false;
    RejectReason reason = RejectReason::OutsideSession;  // when !ok
    DayNumber calendar_day = INT64_MIN;  // the day whose calendar verdict is cached
    bool calendar_open = false;
  };

  // `memo` caches the symbol's state across calls (nullptr: look it up).
  IngestResult process(uint32_t key, const SpotFields& s, TimestampMs not_after, bool changes_only,
                       SymbolHot*& memo);
  void classify_time(TimestampMs t);
  SymbolState& state_for(uint32_t key);
  SymbolState& create_state(Symbol sym);
  void apply_fast(SymbolHot& h, const SpotFields& s);
  void settle(SymbolState& st);  // apply the deferred coarse-period part of fast spots
  void update_due(SymbolState& st);
  void sync_sweep(const SymbolState& st);
  void mark_fast(SymbolState& st, int minute) const;
  void lower_sweep_floor(const SymbolState& st);
  void reserve_day(SymbolState& st);
  SymbolState* find_state(Symbol symbol) const;
  void start_day(SymbolState& st, DayNumber day, int minute, const SpotFields& s);
  void apply(SymbolState& st, int minute, const SpotFields& s, bool changes_only = false);
  void apply_after_hours(SymbolState& st, const SpotFields& s);
  static void remember_last(SymbolHot& hot, const SpotFields& s);
  void report_amended(SymbolState& st, KType k, int from_bucket);
  bool repair_span(SymbolState& st, int first, int last, double volume, double amount,
                   const std::vector<const Bar*>& source);
  void reaggregate(SymbolState& st, KType k, int bucket);
  void fill_flat(SymbolState& st, KType k, int bucket_exclusive, double price);
  // Fill and report what is over when `elapsed` trading minutes have passed and
  // `completed` are final (see TradingSchedule).
  void close_through(SymbolState& st, int elapsed, int completed);
  void report_intraday(SymbolState& st, KType k, int through_bucket);
  void report_day(SymbolState& st, bool amended = false);
  void flush(SymbolState& st);       // write forming bars (and derived DAY..YEAR) to the series
  void finish_day(SymbolState& st);  // the day is over: flush and fill its remaining minutes
  void recompute_period_bases(SymbolState& st);
  void check_enabled(KType k) const;
  IngestResult reject(RejectReason r);

  EngineConfig config_;
  std::array<bool, kKTypeCount> enabled_{};
  std::vector<KType> intraday_;    // enabled intraday periods, MIN first
  std::vector<KType> multi_day_;   // enabled WEEK..YEAR
  bool keep_day_ = false;          // DAY kept (enabled, or needed by WEEK..YEAR)

  // Symbol key -> index into states_, one lazily-allocated direct table per market.
  std::array<std::vector<int32_t>, kMarketCount> index_;
  // States live in fixed-size chunks (stable addresses, contiguous in creation order:
  // a feed sends its symbols in the same order every push, so a push walks memory forward).
  std::vector<std::unique_ptr<SymbolState[]>> chunks_;
  std::vector<std::unique_ptr<SymbolHot[]>> hot_chunks_;
  std::vector<SymbolState*> states_;
  uint64_t seen_symbols_ = 0;
  // Per row of the last ingest_columns call: its symbol key and state (a feed's pushes list
  // the same symbols in the same order, so the index table is rarely consulted).
  std::vector<uint32_t> memo_keys_;
  std::vector<SymbolHot*> memo_states_;
  std::vector<SymbolState*> memo_full_;
  bool fast_ = false;  // the last spot processed took the fast path
  TimeSlot time_;
  // advance_to() visits symbols only when one may have a bar to fill or report: the
  // smallest elapsed/completed minute at which any symbol of sweep_day_ has one.
  // What the sweep reads of each state (by state index), dense so that a sweep with little
  // to do reads 16 bytes a symbol instead of its state and hot lines: kept equal to the
  // state's traded, hot->day, fill_due and report_due by sync_sweep().
  struct SweepEntry {
    DayNumber day = INT64_MIN;
    int16_t fill_due = INT16_MAX, report_due = INT16_MAX;
    bool traded = false;
  };
  std::vector<SweepEntry> sweep_;
  bool sweep_valid_ = false;
  bool sweep_over_ = false;  // the last sweep completed sweep_day_
  DayNumber sweep_day_ = INT64_MIN;
  int sweep_fill_floor_ = 0, sweep_report_floor_ = 0;

  CompletedBars* sink_ = nullptr;  // where the current call reports completed bars
  EngineStats stats_;
  TimestampMs newest_accepted_ = INT64_MIN;
  DayNumber newest_day_ = INT64_MIN;  // the day of newest_accepted_
  int newest_minute_ = -1;             // trading minute of newest_accepted_ on its day
  // The latest advance_to(): a symbol that trades for the first time after it (a straggler)
  // is caught up to it at once, as the symbols that had traded were.
  TimestampMs advanced_ = INT64_MIN;
  DayNumber advanced_day_ = INT64_MIN;
  bool advanced_day_over_ = false;
  int advanced_elapsed_ = 0, advanced_completed_ = 0;
  // Datetime of the first spot after the feed fell silent for a whole trading minute or
  // more (the engine's own view of the feed; see SpotColumns::changes_only).
  TimestampMs feed_gap_end_ = INT64_MIN;
  mutable std::mutex mutex_;
};

}  // namespace hkrt
