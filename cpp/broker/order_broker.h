// OrderBrokerBase: where orders go from a strategy to a broker (docs/brokers.md).
//
// The public calls (buy, sell, cancel, get_asset_info) are non-virtual and never throw: every
// failure of a subclass hook becomes a result.  Every buy/sell attempt, sent or not, is recorded.
// broker_last_datetime keeps history away from a live broker:
//   - unset (the default): no date guard; a live runner sets it to "now" when it starts;
//   - set: an order dated before it is Skipped; an order at or after it goes through, and the
//     guard then advances to that order's datetime;
//   - the same order (datetime, side, market, code, price, num, client id) is never passed to the
//     broker twice, whatever the first attempt's outcome (Skipped as a duplicate); two different
//     orders with the same datetime both go;
//   - a client order id is passed at most once, at any datetime (the newest kMaxClientIds ids are
//     remembered: the oldest is forgotten past that, counted by forgotten_client_ids()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "kdata/time.h"

namespace hkrt {

enum class OrderStatus : uint8_t { Sent, Filled, Rejected, Skipped, Failed };
enum class OrderSide : uint8_t { Buy, Sell };

const char* order_status_name(OrderStatus s);
const char* order_side_name(OrderSide s);

struct OrderResult {
  std::optional<std::string> order_id;
  OrderStatus status = OrderStatus::Sent;
  std::string error;  // empty unless Rejected, Skipped or Failed

  // True when the broker took the order (Sent or Filled).
  bool ok() const { return status == OrderStatus::Sent || status == OrderStatus::Filled; }
  static OrderResult sent(std::optional<std::string> id = std::nullopt) { return {std::move(id), OrderStatus::Sent, {}}; }
  static OrderResult filled(std::optional<std::string> id = std::nullopt) {
    return {std::move(id), OrderStatus::Filled, {}};
  }
  static OrderResult rejected(std::string why) { return {std::nullopt, OrderStatus::Rejected, std::move(why)}; }
  static OrderResult skipped(std::string why) { return {std::nullopt, OrderStatus::Skipped, std::move(why)}; }
  static OrderResult failed(std::string why) { return {std::nullopt, OrderStatus::Failed, std::move(why)}; }
};

// One buy or sell as the caller asked for it.
struct OrderRequest {
  TimestampMs datetime = 0;
  std::string market;  // "SH", "SZ", "BJ"
  std::string code;    // "600000"
  double price = 0.0;  // yuan per share
  double num = 0.0;    // shares
  double stoploss = 0.0;
  double goal_price = 0.0;
  int part_from = 0;  // which part of a trading system produced the order (hikyuu's SystemPart)
  std::string remark;
  // The strategy's own id of the order (unique per order; "" for hikyuu-style calls).  A broker sees
  // one client id at most once: a second submission with it is Skipped as a duplicate.
  std::string client_order_id;
  std::string order_type = "limit";   // what the venue is asked for: "limit" or "market" (A-share venues take
                                      // no other; stops and brackets are emulated locally)
  std::string time_in_force = "day";  // "day", "ioc" or "fok"
};

// One attempt, whatever its outcome.
struct OrderRecord {
  OrderSide side = OrderSide::Buy;
  OrderRequest request;
  OrderResult result;
};

class OrderBrokerBase {
 public:
  explicit OrderBrokerBase(std::string name = "NO_NAME") : name_(std::move(name)) {}
  virtual ~OrderBrokerBase() = default;
  OrderBrokerBase(const OrderBrokerBase&) = delete;
  OrderBrokerBase& operator=(const OrderBrokerBase&) = delete;

  OrderResult buy(TimestampMs datetime, const std::string& market, const std::string& code, double price, double num,
                  double stoploss = 0.0, double goal_price = 0.0, int part_from = 0,
                  const std::string& remark = "") noexcept;
  OrderResult sell(TimestampMs datetime, const std::string& market, const std::string& code, double price, double num,
                   double stoploss = 0.0, double goal_price = 0.0, int part_from = 0,
                   const std::string& remark = "") noexcept;
  OrderResult submit(OrderSide side, const OrderRequest& request) noexcept;
  OrderResult cancel(const std::string& order_id) noexcept;
  // hikyuu's JSON contract ({"datetime", "cash", "positions": [...]}); "" when the hook fails
  // (last_error() says why).
  std::string get_asset_info() noexcept;

  const std::string& name() const { return name_; }
  void set_name(std::string name);
  std::optional<TimestampMs> broker_last_datetime() const;
  void set_broker_last_datetime(std::optional<TimestampMs> t);
  std::vector<OrderRecord> records() const;
  void clear_records();
  std::string last_error() const;

 protected:
  virtual OrderResult _buy(const OrderRequest& request) = 0;
  virtual OrderResult _sell(const OrderRequest& request) = 0;
  virtual std::string _get_asset_info() = 0;
  virtual OrderResult _cancel(const std::string& order_id);

 public:
  static constexpr std::size_t kMaxClientIds = std::size_t{1} << 20;  // ~50 days at the exchange's daily cap
  std::size_t forgotten_client_ids() const;

 private:
  using Key = std::tuple<TimestampMs, int, std::string, std::string, double, double, std::string>;
  OrderResult call_hook(OrderSide side, const OrderRequest& request) noexcept;
  void record(OrderSide side, const OrderRequest& request, const OrderResult& result) noexcept;

  std::string name_;
  mutable std::mutex mutex_;  // guards everything below; never held while a hook runs
  std::optional<TimestampMs> last_datetime_;
  std::set<Key> seen_;  // orders passed to the broker (only those at last_datetime_ once the guard is set)
  std::set<std::string> client_ids_;       // client order ids passed to the broker ...
  std::deque<std::string> client_id_fifo_;  // ... oldest first, to forget past kMaxClientIds
  std::size_t forgotten_client_ids_ = 0;
  std::vector<OrderRecord> records_;
  std::string last_error_;
};

}  // namespace hkrt
