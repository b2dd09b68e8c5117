// One OHLCV bar.  Volume in shares, amount in yuan, datetime is the bar's right label
// in exchange-local time (see time.h).  The layout is fixed: Python views it as a numpy
// structured array without copying.  `filled` marks a flat bar no spot landed in (time
// passed with no spot: O=H=L=C at the last price, volume 0), so users and strategies can
// tell it from a traded bar.
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
  uint8_t filled = 0;
  uint8_t reserved[7] = {};
};

static_assert(sizeof(Bar) == 64, "Bar is viewed from Python as a 64-byte record");

}  // namespace hkrt
