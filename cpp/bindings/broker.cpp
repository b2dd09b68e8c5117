// hkrt._hkrt.OrderBrokerBase and its trampoline: Python subclasses implement _buy, _sell,
// _get_asset_info and optionally _cancel.  hkrt.broker (python/hkrt/broker/) is the public face.
//
// The order hooks take one OrderRequest (``_buy(self, request)``), the object the C++ core passes
// along; a hook written for the older nine-argument form (``_buy(self, datetime, market, code,
// price, num, stoploss, goal_price, part_from, remark)``, docs/brokers.md before issue 13) is
// recognised by its signature and still called that way.
//
// A Python exception in an override is logged on the "hkrt.broker" logger and becomes a
// Failed result carrying the exception text; it never propagates out of buy/sell/cancel.
#include <pybind11/stl.h>

#include <string>
#include <tuple>

#include "broker/order_broker.h"
#include "convert.h"

namespace hkrt::bindings {

namespace {

// Logs on logging.getLogger("hkrt.broker"), with the traceback when there is a Python
// exception; a failing logger is ignored.  GIL held.
void log_error(const std::string& message, py::error_already_set* exc = nullptr) noexcept {
  try {
    py::object logger = py::module_::import("logging").attr("getLogger")("hkrt.broker");
    if (exc) {
      logger.attr("error")(message, py::arg("exc_info") = py::make_tuple(exc->type(), exc->value(), exc->trace()));
    } else {
      logger.attr("error")(message);
    }
  } catch (py::error_already_set& e) {
    e.discard_as_unraisable("hkrt.broker logging");
  } catch (...) {
  }
}

// "ValueError: boom" (pybind11's what() appends the traceback).
std::string exception_text(const py::error_already_set& e) {
  try {
    const std::string type = py::str(e.type().attr("__name__"));
    const std::string text = py::str(e.value());
    return text.empty() ? type : type + ": " + text;
  } catch (...) {
    return e.what();
  }
}

// What an override may return for an order: an OrderResult, None (Sent, no id), a str
// (Sent with that order id) or a bool (True = Sent, False = Rejected).
OrderResult to_result(py::handle ret, const char* hook) {
  if (ret.is_none()) return OrderResult::sent();
  if (py::isinstance<OrderResult>(ret)) return ret.cast<OrderResult>();
  if (py::isinstance<py::bool_>(ret)) {
    return ret.cast<bool>() ? OrderResult::sent() : OrderResult::rejected(std::string(hook) + " returned False");
  }
  if (py::isinstance<py::str>(ret)) return OrderResult::sent(ret.cast<std::string>());
  throw py::type_error(std::string(hook) + " must return OrderResult, str (an order id), bool or None, not " +
                       py::str(py::type::handle_of(ret).attr("__name__")).cast<std::string>());
}

// Whether an order hook takes the request object: a Python function with exactly one positional
// parameter after self and no *args.  Anything else (nine parameters, *args, a callable without
// __code__) gets the nine-argument call it was written for.
bool takes_request(const py::function& hook) {
  py::object func = py::getattr(hook, "__func__", hook);
  py::object code = py::getattr(func, "__code__", py::none());
  if (code.is_none()) return false;
  constexpr int kVarArgs = 0x04;  // CO_VARARGS
  const int argcount = code.attr("co_argcount").cast<int>();
  const int flags = code.attr("co_flags").cast<int>();
  const int bound = py::hasattr(hook, "__self__") ? 1 : 0;
  return argcount - bound == 1 && (flags & kVarArgs) == 0;
}

class PyOrderBroker : public OrderBrokerBase {
 public:
  using OrderBrokerBase::OrderBrokerBase;

 protected:
  OrderResult _buy(const OrderRequest& r) override { return order("_buy", r); }
  OrderResult _sell(const OrderRequest& r) override { return order("_sell", r); }

  std::string _get_asset_info() override {
    py::gil_scoped_acquire gil;
    try {
      py::function f = py::get_override(static_cast<const OrderBrokerBase*>(this), "_get_asset_info");
      if (!f) throw py::type_error(py_class() + " does not implement _get_asset_info");
      return py::str(f()).cast<std::string>();
    } catch (py::error_already_set& e) {
      const std::string text = exception_text(e);
      log_error("broker " + name() + ": _get_asset_info raised " + text, &e);
      throw std::runtime_error(text);
    }
  }

  OrderResult _cancel(const std::string& order_id) override {
    py::gil_scoped_acquire gil;
    py::function f = py::get_override(static_cast<const OrderBrokerBase*>(this), "_cancel");
    if (!f) return OrderBrokerBase::_cancel(order_id);
    try {
      return to_result(f(order_id), "_cancel");
    } catch (py::error_already_set& e) {
      return failed("_cancel(" + order_id + ")", exception_text(e), &e);
    } catch (const std::exception& e) {
      return failed("_cancel(" + order_id + ")", e.what());
    }
  }

 private:
  std::string py_class() const {
    return py::str(py::type::handle_of(py::cast(static_cast<const OrderBrokerBase*>(this))).attr("__name__"));
  }

  OrderResult failed(const std::string& what, const std::string& error, py::error_already_set* exc = nullptr) {
    log_error("broker " + name() + ": " + what + " failed: " + error, exc);
    return OrderResult::failed(error);
  }

  OrderResult order(const char* hook, const OrderRequest& r) {
    py::gil_scoped_acquire gil;
    const std::string what = std::string(hook) + " " + r.market + r.code;
    try {
      py::function f = py::get_override(static_cast<const OrderBrokerBase*>(this), hook);
      if (!f) throw py::type_error(py_class() + " does not implement " + hook);
      if (takes_request(f)) return to_result(f(r), hook);
      return to_result(f(to_datetime(r.datetime), r.market, r.code, r.price, r.num, r.stoploss, r.goal_price,
                         r.part_from, r.remark),
                       hook);
    } catch (py::error_already_set& e) {
      return failed(what, exception_text(e), &e);
    } catch (const std::exception& e) {
      return failed(what, e.what());
    }
  }
};

using Method = OrderResult (OrderBrokerBase::*)(TimestampMs, const std::string&, const std::string&, double, double,
                                                double, double, int, const std::string&) noexcept;

template <Method M>
OrderResult call_order(OrderBrokerBase& self, py::handle datetime, const std::string& market, const std::string& code,
                       double price, double num, double stoploss, double goal_price, int part_from,
                       const std::string& remark) {
  return (self.*M)(to_timestamp(datetime), market, code, price, num, stoploss, goal_price, part_from, remark);
}

}  // namespace

void bind_broker(py::module_& m) {
  py::enum_<OrderStatus>(m, "OrderStatus", "Outcome of an order attempt.")
      .value("Sent", OrderStatus::Sent, "the broker took the order; no fill known yet")
      .value("Filled", OrderStatus::Filled, "the broker reports the order filled")
      .value("Rejected", OrderStatus::Rejected, "refused: invalid order, or by the broker")
      .value("Skipped", OrderStatus::Skipped, "never sent: before broker_last_datetime, or a duplicate")
      .value("Failed", OrderStatus::Failed, "the broker call raised; error holds the text");
  py::enum_<OrderSide>(m, "OrderSide").value("Buy", OrderSide::Buy).value("Sell", OrderSide::Sell);

  py::class_<OrderResult>(m, "OrderResult", "What became of one order: status, broker order id, error text.")
      .def(py::init([](OrderStatus status, std::optional<std::string> order_id, std::string error) {
             return OrderResult{std::move(order_id), status, std::move(error)};
           }),
           py::arg("status") = OrderStatus::Sent, py::arg("order_id") = py::none(), py::arg("error") = "")
      .def_readwrite("order_id", &OrderResult::order_id)
      .def_readwrite("status", &OrderResult::status)
      .def_readwrite("error", &OrderResult::error)
      .def_property_readonly("ok", &OrderResult::ok, "True when Sent or Filled")
      .def("__repr__", [](const OrderResult& r) {
        std::string s = std::string("OrderResult(") + order_status_name(r.status);
        if (r.order_id) s += ", order_id='" + *r.order_id + "'";
        if (!r.error.empty()) s += ", error=" + py::repr(py::str(r.error)).cast<std::string>();
        return s + ")";
      });

  py::class_<OrderRequest>(m, "OrderRequest",
                           "One buy or sell as the strategy asked for it (immutable): the object every order "
                           "hook receives.  price in yuan per share, num in shares.")
      .def(py::init([](py::handle datetime, std::string market, std::string code, double price, double num,
                       double stoploss, double goal_price, int part_from, std::string remark,
                       std::string client_order_id, std::string order_type, std::string time_in_force) {
             if (order_type != "limit" && order_type != "market")
               throw py::value_error("order_type '" + order_type + "' is not one of limit, market");
             if (time_in_force != "day" && time_in_force != "ioc" && time_in_force != "fok")
               throw py::value_error("time_in_force '" + time_in_force + "' is not one of day, ioc, fok");
             return OrderRequest{to_timestamp(datetime), std::move(market),          std::move(code),
                                 price,                  num,                        stoploss,
                                 goal_price,             part_from,                  std::move(remark),
                                 std::move(client_order_id), std::move(order_type), std::move(time_in_force)};
           }),
           py::arg("datetime"), py::arg("market"), py::arg("code"), py::arg("price"), py::arg("num"),
           py::arg("stoploss") = 0.0, py::arg("goal_price") = 0.0, py::arg("part_from") = 0, py::arg("remark") = "",
           py::kw_only(), py::arg("client_order_id") = "", py::arg("order_type") = "limit",
           py::arg("time_in_force") = "day")
      .def_property_readonly("datetime", [](const OrderRequest& r) { return to_datetime(r.datetime); })
      .def_readonly("market", &OrderRequest::market, "SH, SZ or BJ")
      .def_readonly("code", &OrderRequest::code, "six digits")
      .def_readonly("price", &OrderRequest::price, "yuan per share")
      .def_readonly("num", &OrderRequest::num, "shares")
      .def_readonly("stoploss", &OrderRequest::stoploss)
      .def_readonly("goal_price", &OrderRequest::goal_price)
      .def_readonly("part_from", &OrderRequest::part_from, "which part of a trading system made it (hikyuu)")
      .def_readonly("remark", &OrderRequest::remark)
      .def_readonly("client_order_id", &OrderRequest::client_order_id, "the strategy's id of the order ('' if none)")
      .def_readonly("order_type", &OrderRequest::order_type, "limit or market")
      .def_readonly("time_in_force", &OrderRequest::time_in_force, "day, ioc or fok")
      .def_property_readonly(
          "symbol", [](const OrderRequest& r) { return r.market + r.code; }, "market + code, e.g. SH600000")
      .def("__eq__",
           [](const OrderRequest& a, const OrderRequest& b) {
             return std::tie(a.datetime, a.market, a.code, a.price, a.num, a.stoploss, a.goal_price, a.part_from,
                             a.remark, a.client_order_id, a.order_type, a.time_in_force) ==
                    std::tie(b.datetime, b.market, b.code, b.price, b.num, b.stoploss, b.goal_price, b.part_from,
                             b.remark, b.client_order_id, b.order_type, b.time_in_force);
           })
      .def("__repr__", [](const OrderRequest& r) {
        return std::string("OrderRequest(") + format_timestamp(r.datetime) + " " + r.market + r.code + " " +
               py::repr(py::float_(r.num)).cast<std::string>() + " @ " +
               py::repr(py::float_(r.price)).cast<std::string>() + ")";
      });

  py::class_<OrderRecord>(m, "OrderRecord", "One buy or sell attempt and its result.")
      .def_readonly("request", &OrderRecord::request)
      .def_property_readonly("datetime", [](const OrderRecord& r) { return to_datetime(r.request.datetime); })
      .def_readonly("side", &OrderRecord::side)
      .def_property_readonly("market", [](const OrderRecord& r) { return r.request.market; })
      .def_property_readonly("code", [](const OrderRecord& r) { return r.request.code; })
      .def_property_readonly("price", [](const OrderRecord& r) { return r.request.price; })
      .def_property_readonly("num", [](const OrderRecord& r) { return r.request.num; })
      .def_property_readonly("stoploss", [](const OrderRecord& r) { return r.request.stoploss; })
      .def_property_readonly("goal_price", [](const OrderRecord& r) { return r.request.goal_price; })
      .def_property_readonly("part_from", [](const OrderRecord& r) { return r.request.part_from; })
      .def_property_readonly("remark", [](const OrderRecord& r) { return r.request.remark; })
      .def_readonly("result", &OrderRecord::result)
      .def("__repr__", [](const OrderRecord& r) {
        return std::string("OrderRecord(") + format_timestamp(r.request.datetime) + " " + order_side_name(r.side) +
               " " + r.request.market + r.request.code + " " + py::repr(py::float_(r.request.num)).cast<std::string>() +
               " @ " + py::repr(py::float_(r.request.price)).cast<std::string>() + " -> " +
               order_status_name(r.result.status) + ")";
      });

  const char* order_doc =
      "Send one order; never raises once the arguments convert.  Returns an OrderResult: Skipped "
      "(dated before broker_last_datetime, or the same order again), Rejected (num <= 0, bad price, "
      "or refused by the broker), Failed (the broker hook raised) or Sent/Filled.";
  py::class_<OrderBrokerBase, PyOrderBroker>(m, "OrderBrokerBase",
                                             "Base class of order brokers; subclasses implement _buy, _sell, "
                                             "_get_asset_info and optionally _cancel (see docs/brokers.md).")
      .def(py::init<std::string>(), py::arg("name") = "NO_NAME")
      .def("buy", &call_order<&OrderBrokerBase::buy>, py::arg("datetime"), py::arg("market"), py::arg("code"),
           py::arg("price"), py::arg("num"), py::arg("stoploss") = 0.0, py::arg("goal_price") = 0.0,
           py::arg("part_from") = 0, py::arg("remark") = "", order_doc)
      .def("sell", &call_order<&OrderBrokerBase::sell>, py::arg("datetime"), py::arg("market"), py::arg("code"),
           py::arg("price"), py::arg("num"), py::arg("stoploss") = 0.0, py::arg("goal_price") = 0.0,
           py::arg("part_from") = 0, py::arg("remark") = "", order_doc)
      .def("submit", &OrderBrokerBase::submit, py::arg("side"), py::arg("request"),
           "Send one OrderRequest on side (OrderSide.Buy or Sell): what buy/sell do with their arguments; "
           "never raises.")
      .def("cancel", &OrderBrokerBase::cancel, py::arg("order_id"),
           "Cancel an order by its broker id; Failed when the broker does not support it.")
      .def("get_asset_info", &OrderBrokerBase::get_asset_info,
           "hikyuu's asset JSON {datetime, cash, positions}; '' when the broker fails (see last_error).")
      .def_property("name", &OrderBrokerBase::name, &OrderBrokerBase::set_name)
      .def_property(
          "broker_last_datetime",
          [](const OrderBrokerBase& b) -> py::object {
            auto t = b.broker_last_datetime();
            return t ? to_datetime(*t) : py::none();
          },
          [](OrderBrokerBase& b, py::object t) {
            b.set_broker_last_datetime(t.is_none() ? std::nullopt : std::optional<TimestampMs>(to_timestamp(t)));
          },
          "None (default): no date guard.  Set (a live runner sets it to now): orders dated before it are "
          "Skipped, and it advances to each order passed to the broker.")
      .def_property_readonly("records", &OrderBrokerBase::records, "Every buy/sell attempt, oldest first.")
      .def("clear_records", &OrderBrokerBase::clear_records)
      .def_property_readonly("last_error", &OrderBrokerBase::last_error)
      .def_property_readonly("forgotten_client_ids", &OrderBrokerBase::forgotten_client_ids,
                             "Client order ids forgotten past the newest 2**20 (a later duplicate of one would go).");
}

}  // namespace hkrt::bindings
