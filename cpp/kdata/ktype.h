// The thirteen bar periods and their names.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hkrt {

enum class KType : uint8_t { MIN, MIN3, MIN5, MIN15, MIN30, MIN60, HOUR2, DAY, WEEK, MONTH, QUARTER, HALFYEAR, YEAR };

constexpr int kKTypeCount = 13;

constexpr std::array<KType, kKTypeCount> kAllKTypes = {
    KType::MIN,  KType::MIN3,  KType::MIN5,    KType::MIN15,    KType::MIN30, KType::MIN60, KType::HOUR2,
    KType::DAY,  KType::WEEK,  KType::MONTH,   KType::QUARTER,  KType::HALFYEAR, KType::YEAR};

inline int ktype_index(KType k) { return static_cast<int>(k); }

const char* ktype_name(KType k);

// Case-insensitive: "min5", "Min5" and "MIN5" are the same period.
std::optional<KType> parse_ktype(std::string_view name);

// As parse_ktype, but throws std::invalid_argument naming every valid period.
KType parse_ktype_or_throw(std::string_view name);

// "MIN, MIN3, ..., YEAR"
std::string valid_ktype_names();

// Length in minutes of an intraday period, 0 for DAY and longer.
int intraday_minutes(KType k);
inline bool is_intraday(KType k) { return intraday_minutes(k) > 0; }
inline bool is_multi_day(KType k) { return static_cast<int>(k) > static_cast<int>(KType::DAY); }

}  // namespace hkrt
