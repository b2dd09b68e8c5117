// One OHLCV bar.  Volume in shares, amount in yuan, datetime is the bar's right label
// in exchange-local time (see time.h).  The layout is fixed: Python views it as a numpy
// structured array without copying.
#pragma once

#include <cstdint>

#include "time.h"

namespace hkrt {

struct Bar {
  TimestampMs datetime;
  double open;
  double high;
  double low;
  double close;
  double volume;  // shares
  double amount;  // yuan
};

static_assert(sizeof(Bar) == 56, "Bar is viewed from Python as a packed 56-byte record");

}  // namespace hkrt
