#include <stdexcept>

#include "check.h"
#include "kdata/ktype.h"
#include "kdata/symbol.h"

using namespace hkrt;

TEST_CASE("three spellings of a symbol normalise to one") {
  for (const char* text : {"SH600000", "sh600000", "600000.SH", "600000.sh", "Sh600000"}) {
    auto s = parse_symbol(text);
    CHECK(s.has_value());
    if (s) CHECK_EQ(s->str(), std::string("SH600000"));
  }
  CHECK_EQ(parse_symbol("SZ000001")->str(), std::string("SZ000001"));
  CHECK_EQ(parse_symbol("920118.BJ")->str(), std::string("BJ920118"));
  CHECK_EQ(parse_symbol("sz000001")->key(), 1000000u + 1u);
  CHECK(Symbol::from_key(parse_symbol("BJ430047")->key()) == *parse_symbol("bj430047"));
}

TEST_CASE("malformed symbols are refused with the accepted spellings named") {
  for (const char* text : {"", "SH60000", "SH6000001", "XX600000", "600000SH", "60000A.SH", "600000.XS", "SH 60000"}) {
    CHECK(!parse_symbol(text).has_value());
  }
  try {
    parse_symbol_or_throw("HK00700");
    CHECK(false);
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("600000.SH") != std::string::npos);
  }
}

TEST_CASE("ktype names parse in any case; unknown names list the valid ones") {
  CHECK(parse_ktype("min5") == KType::MIN5);
  CHECK(parse_ktype("Min5") == KType::MIN5);
  CHECK(parse_ktype("HalfYear") == KType::HALFYEAR);
  CHECK(parse_ktype("hour2") == KType::HOUR2);
  CHECK(!parse_ktype("MIN2").has_value());
  try {
    parse_ktype_or_throw("min7");
    CHECK(false);
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    CHECK(msg.find("min7") != std::string::npos);
    for (KType k : kAllKTypes) CHECK(msg.find(ktype_name(k)) != std::string::npos);
  }
  CHECK_EQ(intraday_minutes(KType::HOUR2), 120);
  CHECK_EQ(intraday_minutes(KType::DAY), 0);
  CHECK(is_multi_day(KType::WEEK) && !is_multi_day(KType::DAY));
}

TEST_MAIN()
