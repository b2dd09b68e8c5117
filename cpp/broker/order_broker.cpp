#include "broker/order_broker.h"

#include <cmath>
#include <exception>

namespace hkrt {

const char* order_status_name(OrderStatus s) {
  switch (s) {
    case OrderStatus::Sent:
      return "Sent";
    case OrderStatus::Filled:
      return "Filled";
    case OrderStatus::Rejected:
      return "Rejected";
    case OrderStatus::Skipped:
      return "Skipped";
    case OrderStatus::Failed:
      return "Failed";
  }
  return "?";
}

const char* order_side_name(OrderSide s) { return s == OrderSide::Buy ? "Buy" : "Sell"; }

namespace {
// hikyuu's positional form: a limit day order without a client id.
OrderRequest make_request(TimestampMs datetime, const std::string& market, const std::string& code, double price,
                          double num, double stoploss, double goal_price, int part_from, const std::string& remark) {
  OrderRequest r;
  r.datetime = datetime;
  r.market = market;
  r.code = code;
  r.price = price;
  r.num = num;
  r.stoploss = stoploss;
  r.goal_price = goal_price;
  r.part_from = part_from;
  r.remark = remark;
  return r;
}
}  // namespace

OrderResult OrderBrokerBase::buy(TimestampMs datetime, const std::string& market, const std::string& code,
                                 double price, double num, double stoploss, double goal_price, int part_from,
                                 const std::string& remark) noexcept {
  try {
    return submit(OrderSide::Buy, make_request(datetime, market, code, price, num, stoploss, goal_price, part_from, remark));
  } catch (...) {  // only std::bad_alloc copying the strings can land here
    return OrderResult::failed("out of memory");
  }
}

OrderResult OrderBrokerBase::sell(TimestampMs datetime, const std::string& market, const std::string& code,
                                  double price, double num, double stoploss, double goal_price, int part_from,
                                  const std::string& remark) noexcept {
  try {
    return submit(OrderSide::Sell, make_request(datetime, market, code, price, num, stoploss, goal_price, part_from, remark));
  } catch (...) {
    return OrderResult::failed("out of memory");
  }
}

OrderResult OrderBrokerBase::submit(OrderSide side, const OrderRequest& r) noexcept {
  OrderResult result;
  try {
    if (!std::isfinite(r.num) || r.num <= 0.0) {
      result = OrderResult::rejected("num must be a positive number of shares");
    } else if (!std::isfinite(r.price) || r.price < 0.0) {
      result = OrderResult::rejected("price must be a finite number >= 0");
    } else {
      const Key key{r.datetime, static_cast<int>(side), r.market, r.code, r.price, r.num, r.client_order_id};
      bool go = false;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (last_datetime_ && r.datetime < *last_datetime_) {
          result = OrderResult::skipped("dated " + format_timestamp(r.datetime) + ", before broker_last_datetime " +
                                        format_timestamp(*last_datetime_));
        } else if (seen_.count(key)) {
          result = OrderResult::skipped("duplicate: the same order was already passed to the broker");
        } else if (!r.client_order_id.empty() && client_ids_.count(r.client_order_id)) {
          result = OrderResult::skipped("duplicate: client order id " + r.client_order_id +
                                        " was already passed to the broker");
        } else {
          go = true;
          seen_.insert(key);  // reserved before the call: a concurrent twin is skipped
          if (!r.client_order_id.empty()) {
            client_ids_.insert(r.client_order_id);
            client_id_fifo_.push_back(r.client_order_id);
            if (client_id_fifo_.size() > kMaxClientIds) {
              client_ids_.erase(client_id_fifo_.front());
              client_id_fifo_.pop_front();
              ++forgotten_client_ids_;
            }
          }
          if (last_datetime_ && r.datetime > *last_datetime_) {
            last_datetime_ = r.datetime;
            // Orders before the new guard can never pass again: forget them.
            seen_.erase(seen_.begin(), seen_.lower_bound(Key{r.datetime, -1, {}, {}, 0.0, 0.0, {}}));
          }
        }
      }
      if (go) result = call_hook(side, r);
    }
  } catch (const std::exception& e) {
    result = OrderResult::failed(e.what());
  } catch (...) {
    result = OrderResult::failed("unknown error");
  }
  record(side, r, result);
  return result;
}

OrderResult OrderBrokerBase::call_hook(OrderSide side, const OrderRequest& r) noexcept {
  try {
    OrderResult res = side == OrderSide::Buy ? _buy(r) : _sell(r);
    if (res.status == OrderStatus::Skipped) res.status = OrderStatus::Rejected;  // Skipped is the guard's alone
    return res;
  } catch (const std::exception& e) {
    return OrderResult::failed(e.what());
  } catch (...) {
    return OrderResult::failed("unknown error (non-standard exception)");
  }
}

void OrderBrokerBase::record(OrderSide side, const OrderRequest& r, const OrderResult& result) noexcept {
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    records_.push_back(OrderRecord{side, r, result});
    if (!result.ok()) last_error_ = result.error;
  } catch (...) {  // out of memory: the record is lost, the result is still returned
  }
}

OrderResult OrderBrokerBase::cancel(const std::string& order_id) noexcept {
  try {
    return _cancel(order_id);
  } catch (const std::exception& e) {
    return OrderResult::failed(e.what());
  } catch (...) {
    return OrderResult::failed("unknown error (non-standard exception)");
  }
}

OrderResult OrderBrokerBase::_cancel(const std::string& order_id) {
  return OrderResult::failed("broker '" + name_ + "' does not support cancel (order " + order_id + ")");
}

std::string OrderBrokerBase::get_asset_info() noexcept {
  std::string error;
  try {
    return _get_asset_info();
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "unknown error (non-standard exception)";
  }
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    last_error_ = "get_asset_info: " + error;
  } catch (...) {
  }
  return {};
}

void OrderBrokerBase::set_name(std::string name) { name_ = std::move(name); }

std::size_t OrderBrokerBase::forgotten_client_ids() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return forgotten_client_ids_;
}

std::optional<TimestampMs> OrderBrokerBase::broker_last_datetime() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_datetime_;
}

void OrderBrokerBase::set_broker_last_datetime(std::optional<TimestampMs> t) {
  std::lock_guard<std::mutex> lock(mutex_);
  last_datetime_ = t;
  if (t) seen_.erase(seen_.begin(), seen_.lower_bound(Key{*t, -1, {}, {}, 0.0, 0.0, {}}));
}

std::vector<OrderRecord> OrderBrokerBase::records() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return records_;
}

void OrderBrokerBase::clear_records() {
  std::lock_guard<std::mutex> lock(mutex_);
  records_.clear();
}

std::string OrderBrokerBase::last_error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_error_;
}

}  // namespace hkrt
