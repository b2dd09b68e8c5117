#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "broker/order_broker.h"
#include "check.h"

using namespace hkrt;

namespace {

// Counts the orders that reach it; throws for code "THROW".
class CountingBroker : public OrderBrokerBase {
 public:
  int calls = 0;

 protected:
  OrderResult _buy(const OrderRequest& r) override {
    ++calls;
    if (r.code == "THROW") throw std::runtime_error("connection lost");
    return OrderResult::filled("B" + std::to_string(calls));
  }
  OrderResult _sell(const OrderRequest& r) override {
    ++calls;
    if (r.code == "THROW") throw 42;  // not even a std::exception
    return OrderResult::sent("S" + std::to_string(calls));
  }
  std::string _get_asset_info() override { throw std::runtime_error("no account"); }
};

const TimestampMs t0 = make_timestamp(2026, 11, 20, 14, 50);

}  // namespace

TEST_CASE("no guard by default: history orders go through") {
  CountingBroker b;
  CHECK(!b.broker_last_datetime());
  const OrderResult r = b.buy(make_timestamp(2020, 1, 2), "SH", "600000", 10.0, 100);
  CHECK(r.status == OrderStatus::Filled);
  CHECK(r.order_id && *r.order_id == "B1");
  CHECK_EQ(b.calls, 1);
}

TEST_CASE("guard: before it Skipped and recorded, at and after it sent") {
  CountingBroker b;
  b.set_broker_last_datetime(t0);
  const OrderResult before = b.buy(t0 - kMsPerMinute, "SH", "600000", 10.0, 100);
  CHECK(before.status == OrderStatus::Skipped);
  CHECK(before.error.find("before broker_last_datetime") != std::string::npos);
  CHECK_EQ(b.calls, 0);
  CHECK(b.buy(t0, "SH", "600000", 10.0, 100).status == OrderStatus::Filled);
  CHECK(b.sell(t0 + kMsPerMinute, "SZ", "000001", 12.0, 200).status == OrderStatus::Sent);
  CHECK_EQ(b.calls, 2);
  CHECK(*b.broker_last_datetime() == t0 + kMsPerMinute);  // advanced
  // now an order at t0 is history
  CHECK(b.buy(t0, "SH", "600001", 10.0, 100).status == OrderStatus::Skipped);
  const auto recs = b.records();
  CHECK_EQ(recs.size(), size_t{4});
  CHECK(recs[0].result.status == OrderStatus::Skipped);
  CHECK(recs[0].request.code == "600000");
  CHECK(recs[2].side == OrderSide::Sell);
  CHECK_EQ(recs[2].request.price, 12.0);
}

TEST_CASE("two different orders with the same datetime are both sent") {
  CountingBroker b;
  b.set_broker_last_datetime(t0);
  CHECK(b.buy(t0 + kMsPerMinute, "SH", "600000", 10.0, 100).ok());
  CHECK(b.buy(t0 + kMsPerMinute, "SZ", "000001", 10.0, 100).ok());
  CHECK(b.buy(t0 + kMsPerMinute, "SH", "600000", 10.0, 200).ok());  // other num
  CHECK(b.sell(t0 + kMsPerMinute, "SH", "600000", 10.0, 100).ok());  // other side
  CHECK_EQ(b.calls, 4);
}

TEST_CASE("the same order is never sent twice, with or without the guard") {
  for (bool guard : {false, true}) {
    CountingBroker b;
    if (guard) b.set_broker_last_datetime(t0);
    CHECK(b.buy(t0, "SH", "600000", 10.0, 100, 9.0, 11.0, 1, "first").ok());
    const OrderResult again = b.buy(t0, "SH", "600000", 10.0, 100, 9.0, 11.0, 1, "again");
    CHECK(again.status == OrderStatus::Skipped);
    CHECK(again.error.find("duplicate") != std::string::npos);
    CHECK_EQ(b.calls, 1);
    CHECK_EQ(b.records().size(), size_t{2});
  }
}

TEST_CASE("exceptions become Failed, never escape") {
  CountingBroker b;
  const OrderResult r = b.buy(t0, "SH", "THROW", 10.0, 100);
  CHECK(r.status == OrderStatus::Failed);
  CHECK_EQ(r.error, std::string("connection lost"));
  CHECK(!r.order_id);
  const OrderResult s = b.sell(t0, "SH", "THROW", 10.0, 100);
  CHECK(s.status == OrderStatus::Failed);
  CHECK(!s.error.empty());
  CHECK_EQ(b.get_asset_info(), std::string());
  CHECK(b.last_error().find("no account") != std::string::npos);
  const OrderResult c = b.cancel("B1");
  CHECK(c.status == OrderStatus::Failed);
  CHECK(c.error.find("does not support cancel") != std::string::npos);
  CHECK_EQ(b.records().size(), size_t{2});
}

TEST_CASE("the same order from many threads at once reaches the broker once") {
  class Slow : public OrderBrokerBase {
   public:
    std::atomic<int> calls{0};

   protected:
    OrderResult _buy(const OrderRequest&) override {
      ++calls;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return OrderResult::sent();
    }
    OrderResult _sell(const OrderRequest&) override { return OrderResult::sent(); }
    std::string _get_asset_info() override { return "{}"; }
  } b;
  b.set_broker_last_datetime(t0);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) threads.emplace_back([&] { b.buy(t0, "SH", "600000", 10.0, 100); });
  for (auto& th : threads) th.join();
  CHECK_EQ(b.calls.load(), 1);
  CHECK_EQ(b.records().size(), size_t{8});
}

TEST_CASE("invalid quantities are Rejected before the broker") {
  CountingBroker b;
  CHECK(b.buy(t0, "SH", "600000", 10.0, 0).status == OrderStatus::Rejected);
  CHECK(b.buy(t0, "SH", "600000", -1.0, 100).status == OrderStatus::Rejected);
  CHECK_EQ(b.calls, 0);
  CHECK_EQ(b.records().size(), size_t{2});
  b.clear_records();
  CHECK(b.records().empty());
}

TEST_MAIN()
