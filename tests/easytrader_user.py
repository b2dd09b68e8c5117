"""Stand-ins for easytrader trader objects, and easytrader's own HTTP server on loopback around them.

``FakeThsUser`` answers like easytrader 0.23.7's 同花顺-family ``ClientTrader`` (Chinese grid keys, string
entrust numbers, ``TradeError`` for a refused order, ``prepare`` as on ``BaseLoginClientTrader``, i.e. the
login clients ``ht_client``, ``yh_client``, ``gj_client``… — plain ``ths`` has only ``connect``);
``flavour="yh"`` gives the 银河 variant whose ``balance`` is a list of rows.  ``FakeMiniqmtUser`` answers like
0.23.7's ``MiniqmtTrader`` (English keys, int entrust numbers, ``-1`` for a refused order, no ``prepare``, and
a ``buy`` without ``**kwargs``).  Both keep cash and holdings, fill at the order price at once or on
``fill()``, apply T+1 to what may be sold, and log every call in ``calls``.

Today's entrusts and trades (``today_entrusts``, ``today_trades``) as easytrader documents them: the THS
grids list entrusts with 合同编号 and a 状态说明 word (已报, 部成, 已成, 已撤, 部撤, 废单…) and trades with
成交编号 (the ``yh`` flavour, as easytrader's usage docs show it: 委托序号 and no 成交编号); miniqmt lists
English keys with xtquant's ``order_status`` codes and ``traded_id``.  ``fill(no, shares, price)`` trades part
of an entrust, ``junk(no, reason)`` makes it a 废单 (the exchange refused what the counter took).

``EasyTraderServer`` runs the real ``easytrader.server`` Flask app with werkzeug on 127.0.0.1 and an
ephemeral port.  Its ``/prepare`` route makes the user with ``api.use(broker)``; the server's ``api`` name
is swapped, while the server runs, for a shim that hands out the fakes and passes other names to easytrader.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import inspect
import io
import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

__all__ = ["EasyTraderServer", "FakeMiniqmtUser", "FakeThsUser", "Holding"]

_MISSING = object()


@dataclasses.dataclass
class Holding:
    shares: int
    cost_price: float
    sellable: int  # T+1: shares bought today are not sellable until tomorrow
    last_price: float


@dataclasses.dataclass
class _Entrust:
    no: Any
    code: str
    side: str  # "buy" / "sell"
    price: float
    amount: int
    filled: int = 0
    status: str = "已报"  # 已报 / 部成 / 已成 / 已撤 / 部撤 / 废单
    reason: str = ""  # 废单原因


@dataclasses.dataclass
class _Trade:
    trade_id: str  # 成交编号
    no: Any  # the entrust's 合同编号
    code: str
    side: str
    price: float
    shares: int
    when: float  # epoch seconds


_WORKING = ("已报", "部成")
_QMT_CODES = {"已报": 50, "部成": 55, "已成": 56, "已撤": 54, "部撤": 53, "废单": 57}


@dataclasses.dataclass
class _Fault:
    raise_: BaseException | None
    return_: Any
    delay: float
    times: int


def _traced(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Log a call in ``calls`` with its arguments, then play an injected fault or do the work, all under the
    ledger's lock.  Arguments that do not fit the signature raise TypeError first, as the real method would."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def traced(self: _Ledger, *args: Any, **kwargs: Any) -> Any:
        bound = sig.bind(self, *args, **kwargs)
        logged: dict[str, Any] = {}
        for name, value in list(bound.arguments.items())[1:]:
            if sig.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                logged.update(value)
            else:
                logged[name] = value
        with self._lock:
            got = self._enter(fn.__name__, **logged)
            return fn(self, *args, **kwargs) if got is _MISSING else got

    return traced


def _market(code: str) -> str:
    if code.startswith("92") or code.startswith(("4", "8")):
        return "BJ"
    return "SH" if code.startswith(("5", "6", "9")) else "SZ"


class _Ledger:
    """Cash, holdings and entrusts shared by the fakes; subclasses shape the answers."""

    def __init__(self, cash: float, positions: Mapping[str, tuple[int, float]] | None, auto_fill: bool) -> None:
        self.cash = float(cash)  # 资金余额: includes what pending buys froze
        self.frozen = 0.0
        self.holdings: dict[str, Holding] = {
            code: Holding(int(n), float(cost), int(n), float(cost)) for code, (n, cost) in (positions or {}).items()
        }
        self.entrusts: list[_Entrust] = []
        self.trades: list[_Trade] = []
        self._trade_ids = itertools.count(70001)
        self.auto_fill = auto_fill
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._ids = itertools.count(1001)
        self._lock = threading.RLock()  # easytrader's server is threaded

    # ---- test controls ----
    def inject(
        self,
        method: str,
        *,
        raise_: BaseException | None = None,
        return_: Any = _MISSING,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (a name such as "buy" or "balance") wait ``delay``
        seconds, then raise ``raise_`` or return ``return_`` instead of doing their work."""
        self._faults.setdefault(method, []).append(_Fault(raise_, return_, delay, times))

    def order_calls(self) -> list[tuple[str, dict[str, Any]]]:
        return [c for c in self.calls if c[0] in ("buy", "sell", "cancel_entrust")]

    def fill(self, entrust_no: Any, shares: int | None = None, price: float | None = None) -> None:
        """Trade ``shares`` (default: the rest) of a working entrust at ``price`` (default: its limit)."""
        with self._lock:
            e = next(e for e in self.entrusts if e.no == entrust_no and e.status in _WORKING)
            self._execute(e, shares, price)

    def junk(self, entrust_no: Any, reason: str = "证券代码错误") -> None:
        """The exchange refuses a working entrust: 废单, what it froze is released."""
        with self._lock:
            e = next(e for e in self.entrusts if e.no == entrust_no and e.status == "已报")
            self._release(e)
            e.status, e.reason = "废单", reason

    # ---- machinery ----
    def _enter(self, method: str, **args: Any) -> Any:
        self.calls.append((method, args))
        queue = self._faults.get(method)
        if not queue:
            return _MISSING
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        if fault.delay:
            time.sleep(fault.delay)
        if fault.raise_ is not None:
            raise fault.raise_
        return fault.return_

    def _available_cash(self) -> float:
        return self.cash - self.frozen

    def _market_value(self) -> float:
        return sum(h.shares * h.last_price for h in self.holdings.values())

    def _place(self, side: str, security: str, price: float, amount: int) -> _Entrust | str:
        """The entrust, or the reason the counter refuses it."""
        code = str(security)[-6:]  # as ClientTrader: the last six characters are the code
        amount = int(amount)
        if amount <= 0:
            return "委托数量必须大于0"
        if side == "buy":
            cost = price * amount
            if cost > self._available_cash() + 1e-6:
                return "可用资金不足"
            self.frozen += cost
        else:
            h = self.holdings.get(code)
            if h is None or amount > h.sellable:
                return "可用股份不足"
            h.sellable -= amount
        e = _Entrust(self._next_no(), code, side, float(price), amount)
        self.entrusts.append(e)
        if self.auto_fill:
            self._execute(e)
        return e

    def _execute(self, e: _Entrust, shares: int | None = None, price: float | None = None) -> None:
        n = e.amount - e.filled if shares is None else int(shares)
        px = e.price if price is None else float(price)
        if not 0 < n <= e.amount - e.filled:
            raise ValueError(f"cannot trade {n} of entrust {e.no} ({e.filled} of {e.amount} traded)")
        value = px * n
        if e.side == "buy":
            self.frozen -= e.price * n  # what this part froze, at the limit
            self.cash -= value
            h = self.holdings.setdefault(e.code, Holding(0, 0.0, 0, px))
            h.cost_price = (h.cost_price * h.shares + value) / (h.shares + n)
            h.shares += n
        else:
            self.cash += value
            h = self.holdings[e.code]
            h.shares -= n
        h.last_price = px
        e.filled += n
        e.status = "已成" if e.filled == e.amount else "部成"
        self.trades.append(_Trade(str(next(self._trade_ids)), e.no, e.code, e.side, px, n, time.time()))

    def _release(self, e: _Entrust) -> None:
        rest = e.amount - e.filled
        if e.side == "buy":
            self.frozen -= e.price * rest
        else:
            self.holdings[e.code].sellable += rest

    def _withdraw(self, entrust_no: Any) -> bool:
        for e in self.entrusts:
            if e.no == entrust_no and e.status in _WORKING:
                self._release(e)
                e.status = "部撤" if e.filled else "已撤"
                return True
        return False

    # buy and sell as ClientTrader declares them; MiniqmtTrader 0.23.7 overrides buy without **kwargs
    @_traced
    def buy(self, security: str, price: float, amount: int, **kwargs: Any) -> dict[str, Any]:
        return self._trade("buy", security, price, amount)

    @_traced
    def sell(self, security: str, price: float, amount: int, **kwargs: Any) -> dict[str, Any]:
        return self._trade("sell", security, price, amount)

    def _trade(self, side: str, security: str, price: float, amount: int) -> dict[str, Any]:
        raise NotImplementedError

    def _next_no(self) -> Any:
        raise NotImplementedError


class FakeThsUser(_Ledger):
    """Answers as easytrader's THS-family ``ClientTrader`` (``flavour="ths"``) or ``YHClientTrader``
    (``flavour="yh"``).  ``positions`` maps a six-digit code to (shares, cost price), all sellable."""

    def __init__(
        self,
        cash: float = 0.0,
        positions: Mapping[str, tuple[int, float]] | None = None,
        *,
        flavour: str = "ths",
        auto_fill: bool = True,
    ) -> None:
        if flavour not in ("ths", "yh"):
            raise ValueError(f"flavour must be 'ths' or 'yh', not {flavour!r}")
        super().__init__(cash, positions, auto_fill)
        self.flavour = flavour
        self.logged_in = False

    def _next_no(self) -> str:
        return str(next(self._ids))  # the 合同编号 column is read as str (GRID_DTYPE)

    @staticmethod
    def _trade_error(text: str) -> Exception:
        from easytrader.exceptions import TradeError  # the real class, so the server names it

        return TradeError(text)

    @_traced
    def prepare(
        self,
        config_path: str | None = None,
        user: str | None = None,
        password: str | None = None,
        exe_path: str | None = None,
        comm_password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if config_path is not None:  # as BaseLoginClientTrader: the file is read where the trader runs
            with open(config_path, encoding="utf-8") as f:
                user = json.load(f)["user"]
        if not user:
            raise self._trade_error("登录失败: 无账号")
        self.logged_in = True

    @_traced
    def connect(self, exe_path: str | None = None, **kwargs: Any) -> None:
        self.logged_in = True

    @property
    @_traced
    def balance(self) -> Any:
        cash, avail, mv = round(self.cash, 2), round(self._available_cash(), 2), round(self._market_value(), 2)
        if self.flavour == "yh":
            return [
                {
                    "币种": "人民币",
                    "资金余额": cash,
                    "可用资金": avail,
                    "参考市值": mv,
                    "总资产": round(cash + mv, 2),
                    "股份参考盈亏": 0.0,
                    "资金帐号": "000123456",
                },
            ]
        return {
            "资金余额": cash,
            "可用金额": avail,
            "可取金额": avail,
            "股票市值": mv,
            "总资产": round(cash + mv, 2),
        }

    @property
    @_traced
    def position(self) -> Any:
        rows = []
        for code, h in self.holdings.items():
            market = {"SH": "上海Ａ股", "SZ": "深圳Ａ股", "BJ": "北京Ａ股"}[_market(code)]
            mv = round(h.shares * h.last_price, 2)
            if self.flavour == "yh":
                rows.append(
                    {
                        "证券代码": code,
                        "证券名称": f"股票{code}",
                        "股份余额": h.shares,
                        "股份可用": h.sellable,
                        "参考成本价": round(h.cost_price, 3),
                        "参考市价": h.last_price,
                        "参考市值": mv,
                        "参考盈亏": round(mv - h.cost_price * h.shares, 2),
                        "交易市场": market,
                        "股东代码": "A000000001",
                        "买入冻结": 0,
                        "卖出冻结": h.shares - h.sellable,
                        "当前持仓": h.shares,
                    }
                )
            else:
                rows.append(
                    {
                        "证券代码": code,
                        "证券名称": f"股票{code}",
                        "股票余额": h.shares,
                        "可用余额": h.sellable,
                        "冻结数量": 0,
                        "成本价": round(h.cost_price, 3),
                        "市价": h.last_price,
                        "市值": mv,
                        "交易市场": market,
                    }
                )
        return rows

    def _entrust_rows(self, entrusts: list[_Entrust]) -> list[dict[str, Any]]:
        no_key = "委托序号" if self.flavour == "yh" else "合同编号"
        rows = []
        for e in entrusts:
            row = {
                no_key: e.no,
                "证券代码": e.code,
                "证券名称": f"股票{e.code}",
                "买卖标志": "买入" if e.side == "buy" else "卖出",
                "委托价格": e.price,
                "委托数量": e.amount,
                "成交数量": e.filled,
                "撤单数量": e.amount - e.filled if "撤" in e.status else 0,
                "状态说明": e.status,
                "交易市场": {"SH": "上海Ａ股", "SZ": "深圳Ａ股", "BJ": "北京Ａ股"}[_market(e.code)],
            }
            if e.reason:
                row["废单原因"] = e.reason
            rows.append(row)
        return rows

    @property
    @_traced
    def today_entrusts(self) -> list[dict[str, Any]]:
        return self._entrust_rows(self.entrusts)

    @property
    @_traced
    def today_trades(self) -> list[dict[str, Any]]:
        rows = []
        for t in self.trades:
            row = {
                "成交日期": time.strftime("%Y%m%d", time.localtime(t.when)),
                "成交时间": time.strftime("%H:%M:%S", time.localtime(t.when)),
                "证券代码": t.code,
                "证券名称": f"股票{t.code}",
                "买卖标志": "买入" if t.side == "buy" else "卖出",
                "成交价格": t.price,
                "成交数量": t.shares,
                "成交金额": round(t.price * t.shares, 2),
            }
            if self.flavour == "yh":  # easytrader's docs example: no 成交编号, the entrust by 委托序号
                row["委托序号"] = t.no
            else:
                row["合同编号"] = t.no
                row["成交编号"] = t.trade_id
            rows.append(row)
        return rows

    @property
    @_traced
    def cancel_entrusts(self) -> list[dict[str, Any]]:
        return self._entrust_rows([e for e in self.entrusts if e.status in _WORKING])

    def _trade(self, side: str, security: str, price: float, amount: int) -> dict[str, Any]:
        placed = self._place(side, security, price, amount)
        if isinstance(placed, str):  # the client's "提示" dialog without 成功
            raise self._trade_error(placed)
        return {"entrust_no": placed.no}

    @_traced
    def cancel_entrust(self, entrust_no: Any) -> dict[str, Any]:
        if self._withdraw(entrust_no):  # compares with the 合同编号 text: an int never matches
            return {"message": "success"}
        return {"message": "委托单状态错误不能撤单, 该委托单可能已经成交或者已撤"}

    @_traced
    def exit(self) -> None:
        self.logged_in = False


class FakeMiniqmtUser(_Ledger):
    """Answers as easytrader 0.23.7's ``MiniqmtTrader``."""

    def __init__(
        self, cash: float = 0.0, positions: Mapping[str, tuple[int, float]] | None = None, *, auto_fill: bool = True
    ) -> None:
        super().__init__(cash, positions, auto_fill)
        self.account_id = "88000001"
        self.connected = False

    def _next_no(self) -> int:
        return next(self._ids)

    @_traced
    def connect(self, miniqmt_path: str = "", stock_account: str | None = None, **kwargs: Any) -> None:
        self.connected = True

    @property
    @_traced
    def balance(self) -> Any:
        mv = self._market_value()
        return [
            {
                "total_asset": self.cash + mv,
                "market_value": mv,
                "cash": self._available_cash(),
                "frozen_cash": self.frozen,
                "account_type": 2,
                "account_id": self.account_id,
            }
        ]

    @property
    @_traced
    def position(self) -> Any:
        return [
            {
                "stock_code": f"{code}.{_market(code)}",
                "security": code,
                "volume": h.shares,
                "can_use_volume": h.sellable,
                "open_price": h.cost_price,
                "market_value": h.shares * h.last_price,
                "frozen_volume": 0,
                "on_road_volume": 0,
                "yesterday_volume": h.sellable,
                "avg_price": h.cost_price,
                "direction": 48,
                "account_type": 2,
                "account_id": self.account_id,
            }
            for code, h in self.holdings.items()
        ]

    @property
    @_traced
    def today_entrusts(self) -> list[dict[str, Any]]:
        return [
            {
                "security": e.code,
                "stock_code": f"{e.code}.{_market(e.code)}",
                "order_id": e.no,
                "order_sysid": str(e.no - 1000),
                "order_time": int(time.time()),
                "order_type": 23 if e.side == "buy" else 24,
                "order_type_name": "买入" if e.side == "buy" else "卖出",
                "order_volume": e.amount,
                "price_type": 50,
                "price_type_name": "限价",
                "price": e.price,
                "traded_volume": e.filled,
                "traded_price": e.price if e.filled else 0.0,
                "order_status": _QMT_CODES[e.status],
                "order_status_name": e.status,
                "status_msg": e.reason,
                "offset_flag": 48 if e.side == "buy" else 49,
                "offset_flag_name": "买入" if e.side == "buy" else "卖出",
                "strategy_name": "",
                "order_remark": "",
                "direction": 48,
                "direction_name": "多",
                "account_type": 2,
                "account_id": self.account_id,
            }
            for e in self.entrusts
        ]

    @property
    @_traced
    def today_trades(self) -> list[dict[str, Any]]:
        return [
            {
                "security": t.code,
                "stock_code": f"{t.code}.{_market(t.code)}",
                "traded_id": t.trade_id,
                "traded_time": int(t.when),
                "traded_price": t.price,
                "traded_volume": t.shares,
                "traded_amount": t.price * t.shares,
                "order_id": t.no,
                "order_type": 23 if t.side == "buy" else 24,
                "order_type_name": "买入" if t.side == "buy" else "卖出",
                "offset_flag": 48 if t.side == "buy" else 49,
                "offset_flag_name": "买入" if t.side == "buy" else "卖出",
                "account_id": self.account_id,
                "account_type": 2,
                "order_sysid": str(t.no - 1000),
                "strategy_name": "",
                "order_remark": "",
            }
            for t in self.trades
        ]

    @_traced
    def buy(self, security: str, price: float, amount: int) -> dict[str, Any]:  # type: ignore[override]  # 0.23.7: no **kwargs
        return self._trade("buy", security, price, amount)

    def _trade(self, side: str, security: str, price: float, amount: int) -> dict[str, Any]:
        placed = self._place(side, security, price, amount)
        # order_stock answers -1 for a refusal; the real reason only reaches on_order_error
        return {"entrust_no": -1 if isinstance(placed, str) else placed.no}

    @_traced
    def cancel_entrust(self, entrust_no: int) -> dict[str, Any]:
        if self._withdraw(entrust_no):
            return {"success": True, "message": "success"}
        return {"success": False, "message": "failed"}


class _ApiShim:
    """Stands in for ``easytrader.api`` inside ``easytrader.server``: known broker names get the fakes."""

    def __init__(self, users: Mapping[str, Any], real: Any) -> None:
        self._users = {k.lower(): v for k, v in users.items()}
        self._real = real

    def use(self, broker: str, debug: bool = False, **kwargs: Any) -> Any:
        user = self._users.get(str(broker).lower())
        return user if user is not None else self._real.use(broker, debug, **kwargs)


class EasyTraderServer:
    """easytrader's own server app on 127.0.0.1:<ephemeral>, threaded, as ``easytrader.server.run`` would
    serve it (but not on 0.0.0.0).  ``users`` maps broker names for ``/prepare`` to user objects;
    ``install(user)`` puts a user straight into the server's ``global_store`` (for traders with no
    ``prepare``).  ``fail_with = 500`` makes every request answer that status with an HTML page, as a dead
    backend behind a proxy would; with ``fail_echo = True`` that page echoes the request's body as it came,
    URL-encoded and base64-encoded, as a debugging proxy's error page does.  Faults of the transport:
    ``trickle = s`` sends every answer's body one byte per ``s`` seconds; ``endless = True`` answers 200
    with a JSON array that never ends (chunked, no length), trickled too when ``trickle`` is set.
    ``requests`` lists (method, path, JSON body) of what arrived.
    One per process at a time: the server keeps its user in a module global.
    """

    def __init__(self, users: Mapping[str, Any] | None = None) -> None:
        self._users = dict(users or {})
        self.fail_with: int | None = None
        self.fail_echo = False
        self.trickle: float | None = None
        self.endless = False
        self.requests: list[tuple[str, str, Any]] = []
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._saved_api: Any = None
        self._stopping = threading.Event()  # ends trickling and endless answers when the server stops

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    host = "127.0.0.1"

    def install(self, user: Any) -> None:
        import easytrader.server as srv

        srv.global_store["user"] = user

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        import easytrader.server as srv

        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        self.requests.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), body))
        if self.endless:
            start_response("200 OK", [("Content-Type", "application/json")])
            return self._paced(self._endless_array())
        if self.fail_with is not None:
            page = b"<html><body><h1>Internal Server Error</h1>"
            if self.fail_echo:
                form = urllib.parse.urlencode(body) if isinstance(body, dict) else ""
                page += b"<pre>request body: " + raw + b"\nas form: " + form.encode() + b"\nbase64: "
                page += base64.b64encode(raw) + b"</pre>"
            page += b"</body></html>"
            start_response(
                f"{self.fail_with} Error", [("Content-Type", "text/html"), ("Content-Length", str(len(page)))]
            )
            return self._paced(iter([page]))
        environ["wsgi.input"] = io.BytesIO(raw)  # the body was consumed for the log
        return self._paced(srv.app.wsgi_app(environ, start_response))

    def _endless_array(self) -> Iterator[bytes]:
        yield b"["
        while not self._stopping.is_set():
            yield b"0," * 8192

    def _paced(self, chunks: Iterable[bytes]) -> Iterable[bytes]:
        """``chunks`` as they are, or one byte per ``trickle`` seconds."""
        return self._trickled(chunks, self.trickle) if self.trickle else chunks

    def _trickled(self, chunks: Iterable[bytes], delay: float) -> Iterator[bytes]:
        # A write to a client that went away raises inside the server, which then closes this generator.
        try:
            for chunk in chunks:
                for i in range(len(chunk)):
                    if self._stopping.wait(delay):
                        return
                    yield chunk[i : i + 1]
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:  # WSGI: the app's iterable is closed (Flask tears its context down there)
                close()

    def start(self) -> EasyTraderServer:
        import easytrader.server as srv
        from werkzeug.serving import make_server

        self._stopping.clear()
        self._saved_api = srv.api
        srv.api = _ApiShim(self._users, self._saved_api)
        srv.global_store.clear()
        self._server = make_server(self.host, 0, self._wsgi, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="easytrader-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        import easytrader.server as srv

        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._saved_api is not None:
            srv.api = self._saved_api
            self._saved_api = None
        srv.global_store.clear()

    def __enter__(self) -> EasyTraderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
