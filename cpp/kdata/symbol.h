// Securities are named by market and a six-digit code.  Three spellings are accepted
// everywhere ("SH600000", "sh600000", "600000.SH") and normalised to "SH600000".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hkrt {

enum class Market : uint8_t { SH = 0, SZ = 1, BJ = 2 };
constexpr int kMarketCount = 3;
constexpr uint32_t kCodesPerMarket = 1000000;  // six decimal digits

const char* market_name(Market m);
std::optional<Market> parse_market(std::string_view text);  // case-insensitive

struct Symbol {
  Market market = Market::SH;
  uint32_t code = 0;  // 0..999999, printed with leading zeros

  // Dense key, unique per symbol: market * 1e6 + code.
  uint32_t key() const { return static_cast<uint32_t>(market) * kCodesPerMarket + code; }
  static Symbol from_key(uint32_t key) {
    return Symbol{static_cast<Market>(key / kCodesPerMarket), key % kCodesPerMarket};
  }
  std::string str() const;       // "SH600000"
  void write(char out[8]) const;  // the same 8 characters, no allocation (hot paths)
  std::string code_str() const;  // "600000"
  bool operator==(const Symbol& o) const { return market == o.market && code == o.code; }
  bool operator!=(const Symbol& o) const { return !(*this == o); }
  bool operator<(const Symbol& o) const { return key() < o.key(); }
};

std::optional<Symbol> parse_symbol(std::string_view text);
std::optional<Symbol> parse_code(std::string_view market, std::string_view code);

// Throws std::invalid_argument with the accepted spellings in the message.
Symbol parse_symbol_or_throw(std::string_view text);

}  // namespace hkrt
