"""A double-entry ledger of a strategy's money (docs/ledger.md).

Every fill, fee, tax and cash movement is one balanced :class:`Transaction`: its postings over accounts
sum to exactly zero, in integer fen (0.01 yuan), so no balance can drift or be lost.  Balances derive from
the postings; :meth:`Ledger.check` recomputes them and names anything that does not add up.

Sign convention (debit positive, credit negative): assets (``cash``, ``positions:<symbol>`` at cost) and
expenses (``fees:*``, ``taxes:*``) carry positive balances; ``equity:capital`` (what was put in) and
``realized_pnl`` (a gain is a credit) carry negative ones.  All balances together sum to zero;
:meth:`Ledger.realized_pnl` gives the P&L with a gain positive.  ``suspense`` holds cash that moved for a reason
the ledger could not post (:meth:`Ledger.post_unexplained`): it is 0 in a ledger with nothing wrong.

Positions are held at average cost, fees not included (fees are expensed to their own accounts): a sell
takes ``cost × sold / held`` (rounded half up to the fen; selling all takes the whole remaining cost, so no
residue stays) off the position and credits ``realized_pnl`` with proceeds − that cost.  The book
(``hkrt.strategy.book``) folds buy fees into its cost price instead; cash is the same either way.

Bounded: one transaction per fill or cash movement (3 to 5 postings each).  Past ``max_transactions`` the
oldest are rolled into one opening-balance transaction (its postings: the rolled ones summed per account),
counted in ``stats["rolled"]`` and logged at WARNING (rate-limited).  Rolling keeps every balance exact and
``check`` true; only the detail of old movements is given up.  Refusing instead would be dishonest: a fill
has happened at the broker whether the ledger has room or not.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections import deque
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hkrt.core.logs import log_limited

if TYPE_CHECKING:
    import pandas as pd

    from hkrt.broker.asset import AssetInfo
    from hkrt.core.fees import Fees
    from hkrt.strategy.book import Trade
    from hkrt.strategy.reconcile import Reconciliation

__all__ = ["LEDGER_COLUMNS", "Ledger", "LedgerError", "Posting", "Transaction", "split_fees", "to_fen"]

log = logging.getLogger("hkrt.strategy.ledger")

CASH = "cash"
CAPITAL = "equity:capital"
REALIZED_PNL = "realized_pnl"
COMMISSION = "fees:commission"
STAMP_TAX = "taxes:stamp"
TRANSFER_FEE = "fees:transfer"
UNITEMIZED_FEES = "fees:unitemized"  # a fill whose fees came as one total (strategy.trades has only the total)
SUSPENSE = "suspense"  # the other side of cash that moved for a reason the ledger could not post
POSITION_PREFIX = "positions:"
MAX_TRANSACTIONS = 1_000_000  # a busy day is a few thousand fills

# Ledger.to_frame: one row per posting
LEDGER_COLUMNS = ["txn_id", "datetime", "account", "amount", "fen", "shares", "description", "client_order_id",
                  "trade_id"]  # fmt: skip


class LedgerError(ValueError):
    """A movement the ledger refuses (nothing was posted), or a check that failed."""


def to_fen(yuan: float | Decimal) -> int:
    """``yuan`` as integer fen, half up; a float is read from its printed value (10.1 is 1010 fen)."""
    exact = yuan if isinstance(yuan, Decimal) else Decimal(repr(float(yuan)))
    return int((exact * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _yuan(fen: int) -> float:
    return fen / 100


@dataclass(frozen=True)
class Posting:
    """One line of a transaction: ``fen`` (signed, debit positive) to ``account``; ``shares`` moved with it
    (position accounts only)."""

    account: str
    fen: int
    shares: int = 0

    @property
    def amount(self) -> float:
        """Yuan."""
        return _yuan(self.fen)


@dataclass(frozen=True)
class Transaction:
    """One balanced movement: its postings sum to zero fen."""

    id: int
    datetime: dt.datetime | None
    description: str
    postings: tuple[Posting, ...]
    client_order_id: str = ""
    trade_id: str = ""

    @property
    def balanced(self) -> bool:
        return sum(p.fen for p in self.postings) == 0


def _fee_parts(fees: Any) -> list[tuple[str, int]]:
    """(account, fen) of a fill's fees: an ``hkrt.core.fees.Fees`` (or anything with commission, stamp_tax,
    transfer_fee) is itemized; a number goes to ``fees:unitemized``."""
    if isinstance(fees, (int, float)):
        parts = [(UNITEMIZED_FEES, fees)]
    else:
        try:
            parts = [(COMMISSION, fees.commission), (STAMP_TAX, fees.stamp_tax), (TRANSFER_FEE, fees.transfer_fee)]
        except AttributeError:
            raise LedgerError(
                f"fees must be yuan or a Fees (commission, stamp_tax, transfer_fee), not {type(fees).__name__}"
            ) from None
    out = []
    for account, value in parts:
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise LedgerError(f"fee {account} must be a finite number >= 0 yuan, not {value!r}")
        out.append((account, to_fen(value)))
    return out


def split_fees(
    total: float, model: Any, symbol: str, side: str, price: float, shares: int, day: dt.date
) -> Fees | float:
    """A fill's ``total`` fees itemized by the fee model that priced them (an ``hkrt.core.fees.FeeModel``):
    the stamp tax and transfer fee that ``model`` charges for this fill (they depend on the fill alone, not
    on the order's earlier fills), the commission the rest.  ``total`` itself (posted unitemized) when the
    model cannot price the fill or the rest would be below zero (the fees were charged by another schedule)."""
    from hkrt.core.fees import Fees

    try:
        parts = model.fill_fees(symbol, side, price, shares, day)
        taxes = to_fen(parts.stamp_tax), to_fen(parts.transfer_fee)
    except (AttributeError, TypeError, ValueError):
        return total
    commission = to_fen(total) - sum(taxes)
    if commission < 0:
        return total
    return Fees(_yuan(commission), _yuan(taxes[0]), _yuan(taxes[1]))


class Ledger:
    """Double-entry accounts of one strategy, starting with ``initial_cash`` yuan of capital."""

    def __init__(
        self, initial_cash: float, *, when: dt.datetime | None = None, max_transactions: int = MAX_TRANSACTIONS
    ) -> None:
        if not (isinstance(initial_cash, (int, float)) and math.isfinite(initial_cash)):
            raise LedgerError(f"initial_cash must be a finite number of yuan, not {initial_cash!r}")
        if not (isinstance(max_transactions, int) and max_transactions >= 1):
            raise LedgerError(f"max_transactions must be an integer >= 1, not {max_transactions!r}")
        self.max_transactions = max_transactions
        self._transactions: deque[Transaction] = deque()
        self._balances: dict[str, int] = {}
        self._shares: dict[str, int] = {}  # symbol -> shares held
        self._opening: dict[str, tuple[int, int]] = {}  # account -> (fen, shares) of the rolled transactions
        self._opening_time: dt.datetime | None = None
        self._next_id = 1
        self.stats = {"transactions": 0, "rolled": 0, "refused": 0, "fills": 0, "unexplained": 0}
        self.initial_cash = _yuan(to_fen(initial_cash))
        self._post(
            when, "initial capital", [Posting(CASH, to_fen(initial_cash)), Posting(CAPITAL, -to_fen(initial_cash))]
        )

    # -- posting --------------------------------------------------------------------------------------

    def _post(self, when: dt.datetime | None, description: str, postings: list[Posting], *, client_order_id: str = "",
              trade_id: str = "") -> Transaction:  # fmt: skip
        if sum(p.fen for p in postings) != 0:  # a bug in this module, never the user's input
            raise LedgerError(f"unbalanced transaction {description!r}: {postings}")
        txn = Transaction(self._next_id, when, description, tuple(postings), client_order_id, trade_id)
        self._next_id += 1
        for p in postings:
            self._balances[p.account] = self._balances.get(p.account, 0) + p.fen
            if p.account.startswith(POSITION_PREFIX):
                symbol = p.account[len(POSITION_PREFIX) :]
                self._shares[symbol] = self._shares.get(symbol, 0) + p.shares
        self._transactions.append(txn)
        self.stats["transactions"] += 1
        while len(self._transactions) > self.max_transactions:
            self._roll(self._transactions.popleft())
        return txn

    def _roll(self, txn: Transaction) -> None:
        """Fold the oldest kept transaction into the opening balance (the bound)."""
        for p in txn.postings:
            fen, shares = self._opening.get(p.account, (0, 0))
            self._opening[p.account] = (fen + p.fen, shares + p.shares)
        self._opening_time = txn.datetime
        self.stats["rolled"] += 1
        log_limited(log, logging.WARNING, "ledger_rolled",
                    f"the ledger keeps the newest {self.max_transactions} transactions: older ones are rolled into"
                    " the opening balance", {"kept": self.max_transactions, "rolled": self.stats["rolled"]},
                    3600.0)  # fmt: skip

    def _refuse(self, message: str) -> LedgerError:
        self.stats["refused"] += 1
        return LedgerError(message)

    def post_fill(
        self,
        when: dt.datetime | None,
        symbol: str,
        side: str,
        shares: int,
        price: float,
        fees: Any = 0.0,
        *,
        trade_id: str = "",
        client_order_id: str = "",
    ) -> Transaction:
        """Post one fill: ``shares`` of ``symbol`` at ``price`` yuan; ``fees`` yuan in total, or an
        ``hkrt.core.fees.Fees`` to itemize commission, stamp tax and transfer fee.

        buy:  positions:<symbol> += amount; fees accounts += fees; cash −= amount + fees.
        sell: positions:<symbol> −= average cost of the shares sold; fees += fees; cash += amount − fees;
              realized_pnl −= amount − cost (a credit: a gain).
        LedgerError (nothing posted) for a bad side, non-positive shares or price, negative fees, or a sell of
        more than is held."""
        if side not in ("buy", "sell"):
            raise self._refuse(f"side must be 'buy' or 'sell', not {side!r}")
        if not (isinstance(shares, int) and not isinstance(shares, bool) and shares > 0):
            raise self._refuse(f"{symbol} {side}: shares must be a positive integer, not {shares!r}")
        if not (isinstance(price, (int, float)) and math.isfinite(price) and price > 0):
            raise self._refuse(f"{symbol} {side}: price must be a finite number > 0 yuan, not {price!r}")
        if not symbol:
            raise self._refuse("symbol is empty")
        try:
            fee_parts = [(a, f) for a, f in _fee_parts(fees) if f]
        except LedgerError as e:
            raise self._refuse(f"{symbol} {side}: {e}") from None
        amount = to_fen(Decimal(repr(float(price))) * shares)
        fee_total = sum(f for _, f in fee_parts)
        account = POSITION_PREFIX + symbol
        postings = [Posting(a, f) for a, f in fee_parts]
        if side == "buy":
            postings = [Posting(account, amount, shares), *postings, Posting(CASH, -(amount + fee_total))]
        else:
            held = self._shares.get(symbol, 0)
            if shares > held:
                raise self._refuse(f"{symbol} sell of {shares} shares exceeds the {held} held")
            cost_held = self._balances.get(account, 0)
            cost = cost_held if shares == held else (2 * cost_held * shares + held) // (2 * held)
            postings = [Posting(CASH, amount - fee_total), *postings, Posting(account, -cost, -shares)]
            postings.append(Posting(REALIZED_PNL, -(amount - cost)))
        description = f"{side} {shares} {symbol} @ {price:g}"
        txn = self._post(when, description, postings, client_order_id=client_order_id, trade_id=trade_id)
        self.stats["fills"] += 1
        return txn

    def post_trade(self, trade: Trade, fees: Any = None) -> Transaction:
        """Post one ``hkrt.strategy.book.Trade`` (what ``Book.fill`` returns); ``fees``: an itemized
        ``Fees`` for it, else the trade's total goes to ``fees:unitemized``."""
        return self.post_fill(
            trade.datetime,
            trade.symbol,
            trade.side,
            trade.shares,
            trade.price,
            trade.fees if fees is None else fees,
            trade_id=trade.trade_id,
            client_order_id=trade.client_order_id,
        )

    def post_cash(self, when: dt.datetime | None, amount: float, description: str = "") -> Transaction:
        """A deposit (``amount`` > 0 yuan) or withdrawal (< 0): cash against ``equity:capital``."""
        if not (isinstance(amount, (int, float)) and math.isfinite(amount)):
            raise self._refuse(f"cash movement must be a finite number of yuan, not {amount!r}")
        fen = to_fen(amount)
        if fen == 0:
            raise self._refuse(f"cash movement of {amount!r} yuan is zero to the fen")
        text = description or ("deposit" if fen > 0 else "withdrawal")
        return self._post(when, text, [Posting(CASH, fen), Posting(CAPITAL, -fen)])

    def post_opening_position(
        self, when: dt.datetime | None, symbol: str, shares: int, cost_price: float
    ) -> Transaction:
        """A holding brought in at the opening (what the broker held before the run): ``shares`` of
        ``symbol`` at ``cost_price`` yuan each, ``positions:<symbol>`` against ``equity:capital``."""
        if not (isinstance(shares, int) and not isinstance(shares, bool) and shares > 0):
            raise self._refuse(f"{symbol} opening position: shares must be a positive integer, not {shares!r}")
        if not (isinstance(cost_price, (int, float)) and math.isfinite(cost_price) and cost_price >= 0):
            raise self._refuse(
                f"{symbol} opening position: cost price must be a finite number >= 0 yuan, not {cost_price!r}"
            )
        if not symbol:
            raise self._refuse("symbol is empty")
        cost = to_fen(Decimal(repr(float(cost_price))) * shares)
        postings = [Posting(POSITION_PREFIX + symbol, cost, shares), Posting(CAPITAL, -cost)]
        return self._post(when, f"opening position {shares} {symbol} @ {cost_price:g}", postings)

    def post_unexplained(
        self, when: dt.datetime | None, cash_fen: int, description: str, *, trade_id: str = "",
        client_order_id: str = "",
    ) -> Transaction:  # fmt: skip
        """Cash that moved by ``cash_fen`` (signed) for a reason the ledger cannot post (a fill it refused):
        ``cash`` against ``suspense``, so the cash stays true and the unexplained amount stays visible."""
        if not (isinstance(cash_fen, int) and not isinstance(cash_fen, bool) and cash_fen):
            raise self._refuse(f"an unexplained cash movement must be a non-zero integer of fen, not {cash_fen!r}")
        txn = self._post(when, description, [Posting(CASH, cash_fen), Posting(SUSPENSE, -cash_fen)],
                         client_order_id=client_order_id, trade_id=trade_id)  # fmt: skip
        self.stats["unexplained"] += 1
        return txn

    @classmethod
    def from_trades(
        cls, trades: pd.DataFrame, initial_cash: float, *, max_transactions: int = MAX_TRANSACTIONS
    ) -> Ledger:
        """A ledger of ``strategy.trades`` (columns datetime, symbol, side, price, shares, fees,
        client_order_id, trade_id), posted in row order; fees are one total per fill (``fees:unitemized``)."""
        missing = {"datetime", "symbol", "side", "price", "shares", "fees"} - set(trades.columns)
        if missing:
            raise LedgerError(f"trades lack the columns {', '.join(sorted(missing))}")
        ledger = cls(initial_cash, max_transactions=max_transactions)
        for row in trades.to_dict("records"):
            when = row["datetime"]
            ledger.post_fill(
                when.to_pydatetime() if hasattr(when, "to_pydatetime") else when,
                str(row["symbol"]),
                str(row["side"]),
                int(row["shares"]),
                float(row["price"]),
                float(row["fees"]),
                trade_id=str(row.get("trade_id") or ""),
                client_order_id=str(row.get("client_order_id") or ""),
            )
        return ledger

    # -- reading --------------------------------------------------------------------------------------

    @property
    def cash(self) -> float:
        return self.balance(CASH)

    def balance(self, account: str) -> float:
        """Yuan, debit positive (0 for an account never posted to)."""
        return _yuan(self._balances.get(account, 0))

    def balance_fen(self, account: str) -> int:
        return self._balances.get(account, 0)

    def balances(self) -> dict[str, float]:
        """account -> yuan, every account ever posted to (sorted)."""
        return {a: _yuan(f) for a, f in sorted(self._balances.items())}

    def realized_pnl(self) -> float:
        """Proceeds − average cost of every sell so far, gross of fees (a gain positive)."""
        return -self.balance(REALIZED_PNL)

    @property
    def suspense(self) -> float:
        """Cash moved for reasons the ledger could not post, yuan (0 when nothing is wrong)."""
        return -self.balance(SUSPENSE)

    def fees(self) -> float:
        """Every fee and tax so far, yuan."""
        return _yuan(self.fees_fen())

    def fees_fen(self) -> int:
        return sum(f for a, f in self._balances.items() if a.startswith(("fees:", "taxes:")))

    def shares(self, symbol: str) -> int:
        """Shares of ``symbol`` held (0 if none)."""
        return self._shares.get(symbol, 0)

    def positions(self) -> dict[str, tuple[int, float]]:
        """symbol -> (shares, cost in yuan) of what is held (symbols sold out are left out)."""
        return {s: (n, self.balance(POSITION_PREFIX + s)) for s, n in sorted(self._shares.items()) if n}

    @property
    def transactions(self) -> list[Transaction]:
        """The kept transactions, oldest first; after a roll the first is the opening balance (id 0)."""
        kept = list(self._transactions)
        if self.stats["rolled"]:
            opening = tuple(Posting(a, f, n) for a, (f, n) in sorted(self._opening.items()) if f or n)
            text = f"opening balance ({self.stats['rolled']} older transactions rolled)"
            kept.insert(0, Transaction(0, self._opening_time, text, opening))
        return kept

    def to_frame(self) -> pd.DataFrame:
        """One row per posting (LEDGER_COLUMNS); ``amount`` yuan, ``fen`` its exact integer."""
        import pandas as pd

        rows = [
            (t.id, t.datetime, p.account, p.amount, p.fen, p.shares, t.description, t.client_order_id, t.trade_id)
            for t in self.transactions
            for p in t.postings
        ]
        frame = pd.DataFrame(rows, columns=LEDGER_COLUMNS)
        frame["datetime"] = pd.to_datetime(frame["datetime"])
        return frame.astype({"txn_id": "int64", "fen": "int64", "shares": "int64"})

    def to_parquet(self, path: Any) -> None:
        """Write :meth:`to_frame` as Parquet at ``path`` (``~`` expanded; pyarrow is loaded here, not on import)."""
        self.to_frame().to_parquet(Path(path).expanduser(), index=False, engine="pyarrow")

    # -- checking -------------------------------------------------------------------------------------

    def check(self) -> None:
        """Recompute every balance from the transactions and compare: LedgerError naming the first problem
        (an unbalanced transaction, a balance not equal to its postings, all balances not summing to zero, a
        position below zero shares or with cost but no shares)."""
        fen: dict[str, int] = {}
        shares: dict[str, int] = {}
        for t in self.transactions:
            if not t.balanced:
                raise LedgerError(
                    f"transaction {t.id} ({t.description}) is off by {sum(p.fen for p in t.postings)} fen"
                )
            for p in t.postings:
                fen[p.account] = fen.get(p.account, 0) + p.fen
                if p.account.startswith(POSITION_PREFIX):
                    symbol = p.account[len(POSITION_PREFIX) :]
                    shares[symbol] = shares.get(symbol, 0) + p.shares
        for account in sorted(set(fen) | set(self._balances)):
            if fen.get(account, 0) != self._balances.get(account, 0):
                raise LedgerError(
                    f"{account} balance {self._balances.get(account, 0)} fen but its postings sum to"
                    f" {fen.get(account, 0)} fen"
                )
        if sum(self._balances.values()):
            raise LedgerError(f"balances sum to {sum(self._balances.values())} fen, not 0")
        for symbol in sorted(set(shares) | set(self._shares)):
            n = self._shares.get(symbol, 0)
            if n != shares.get(symbol, 0):
                raise LedgerError(f"{symbol} holds {n} shares but its postings move {shares.get(symbol, 0)}")
            if n < 0:
                raise LedgerError(f"{symbol} holds {n} shares, below zero")
            cost = self._balances.get(POSITION_PREFIX + symbol, 0)
            if n == 0 and cost:
                raise LedgerError(f"{symbol} holds no shares but {cost} fen of cost")

    def reconcile(self, asset: AssetInfo, *, cash_tolerance: float = 0.01) -> Reconciliation:
        """Cash and shares of the ledger against the broker's ``asset`` (``hkrt.strategy.reconcile``)."""
        from hkrt.strategy.reconcile import reconcile

        held = {s: n for s, (n, _) in self.positions().items()}
        return reconcile(held, self.cash, asset, cash_tolerance=cash_tolerance)

    def __repr__(self) -> str:
        return (
            f"Ledger(cash={self.cash:.2f}, positions={len(self.positions())},"
            f" transactions={self.stats['transactions']}, rolled={self.stats['rolled']})"
        )
