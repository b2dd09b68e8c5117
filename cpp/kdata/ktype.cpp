#include "ktype.h"

#include <cctype>
#include <stdexcept>

namespace hkrt {

namespace {
constexpr const char* kNames[kKTypeCount] = {"MIN",  "MIN3", "MIN5",  "MIN15",   "MIN30",    "MIN60", "HOUR2",
                                             "DAY",  "WEEK", "MONTH", "QUARTER", "HALFYEAR", "YEAR"};
constexpr int kMinutes[kKTypeCount] = {1, 3, 5, 15, 30, 60, 120, 0, 0, 0, 0, 0, 0};
}  // namespace

const char* ktype_name(KType k) { return kNames[ktype_index(k)]; }

int intraday_minutes(KType k) { return kMinutes[ktype_index(k)]; }

std::optional<KType> parse_ktype(std::string_view name) {
  std::string upper;
  upper.reserve(name.size());
  for (char c : name) upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  for (int i = 0; i < kKTypeCount; ++i) {
    if (upper == kNames[i]) return static_cast<KType>(i);
  }
  return std::nullopt;
}

std::string valid_ktype_names() {
  std::string out;
  for (int i = 0; i < kKTypeCount; ++i) {
    if (i) out += ", ";
    out += kNames[i];
  }
  return out;
}

KType parse_ktype_or_throw(std::string_view name) {
  if (auto k = parse_ktype(name)) return *k;
  throw std::invalid_argument("unknown ktype '" + std::string(name) + "'; valid ktypes (any case): " +
                              valid_ktype_names());
}

}  // namespace hkrt
