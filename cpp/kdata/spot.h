// A quote snapshot ("spot") as every fetcher delivers it, in the project's one unit
// convention: prices in yuan, volume in shares, amount in yuan; volume and amount are
// cumulative for the trading day.  Fetchers convert lots / 万元 at their edge, never here.
#pragma once

#include <array>
#include <string>

#include "symbol.h"
#include "time.h"

namespace hkrt {

constexpr int kBookLevels = 5;

struct Spot {
  Symbol symbol;
  std::string name;
  TimestampMs datetime = 0;  // exchange-local
  double yesterday_close = 0;
  double open = 0;   // the day's open
  double high = 0;   // the day's high so far
  double low = 0;    // the day's low so far
  double close = 0;  // last price
  double amount = 0;  // yuan, cumulative for the day
  double volume = 0;  // shares, cumulative for the day
  std::array<double, kBookLevels> bid{};
  std::array<double, kBookLevels> bid_volume{};  // shares
  std::array<double, kBookLevels> ask{};
  std::array<double, kBookLevels> ask_volume{};  // shares
};

// The fields aggregation reads: what both the object path and the columnar path feed in.
struct SpotFields {
  TimestampMs datetime;
  double open, high, low, close, volume, amount;
};

inline SpotFields fields_of(const Spot& s) {
  return SpotFields{s.datetime, s.open, s.high, s.low, s.close, s.volume, s.amount};
}

}  // namespace hkrt
