#include "symbol.h"

#include <cctype>
#include <cstdio>
#include <stdexcept>

namespace hkrt {

namespace {
constexpr const char* kMarketNames[kMarketCount] = {"SH", "SZ", "BJ"};

std::optional<uint32_t> parse_six_digits(std::string_view s) {
  if (s.size() != 6) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  return v;
}
}  // namespace

const char* market_name(Market m) { return kMarketNames[static_cast<int>(m)]; }

std::optional<Market> parse_market(std::string_view text) {
  if (text.size() != 2) return std::nullopt;
  const char a = static_cast<char>(std::toupper(static_cast<unsigned char>(text[0])));
  const char b = static_cast<char>(std::toupper(static_cast<unsigned char>(text[1])));
  for (int i = 0; i < kMarketCount; ++i) {
    if (kMarketNames[i][0] == a && kMarketNames[i][1] == b) return static_cast<Market>(i);
  }
  return std::nullopt;
}

std::string Symbol::str() const {
  char buf[8];
  write(buf);
  return std::string(buf, 8);
}

void Symbol::write(char out[8]) const {
  const char* m = market_name(market);
  out[0] = m[0];
  out[1] = m[1];
  uint32_t c = code;
  for (int i = 7; i >= 2; --i, c /= 10) out[i] = static_cast<char>('0' + c % 10);
}

std::string Symbol::code_str() const {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%06u", code);
  return buf;
}

std::optional<Symbol> parse_code(std::string_view market, std::string_view code) {
  auto m = parse_market(market);
  auto c = parse_six_digits(code);
  if (!m || !c) return std::nullopt;
  return Symbol{*m, *c};
}

std::optional<Symbol> parse_symbol(std::string_view text) {
  if (text.size() == 8) return parse_code(text.substr(0, 2), text.substr(2));           // SH600000
  if (text.size() == 9 && text[6] == '.') return parse_code(text.substr(7), text.substr(0, 6));  // 600000.SH
  return std::nullopt;
}

Symbol parse_symbol_or_throw(std::string_view text) {
  if (auto s = parse_symbol(text)) return *s;
  throw std::invalid_argument("invalid symbol '" + std::string(text) +
                              "': expected a market SH/SZ/BJ and a six-digit code, written SH600000, "
                              "sh600000 or 600000.SH");
}

}  // namespace hkrt
