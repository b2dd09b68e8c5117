"""The strategy's book kept in step with a double-entry ledger (docs/ledger.md, "In a strategy").

``LedgeredBook`` is the :class:`~hkrt.strategy.book.Book` a :class:`~hkrt.strategy.Strategy` keeps: every fill
the book counts (``Book.fill``, called by the ``OrderManager`` for each fill of the primary broker) is posted
to its :class:`~hkrt.strategy.ledger.Ledger` in the same call, with the same price, shares and fees, so the
two cannot drift apart by one being told of a fill the other missed.  Right after each posting the ledger's
cash and the traded symbol's shares are compared with the book's, to the fen.

Fees are itemized by the fee model that priced them (``fee_model(broker)``: the paper broker's own model for
its reports, else the strategy's ``FeeModel``; :func:`~hkrt.strategy.ledger.split_fees`); without one the
total goes to ``fees:unitemized``.  The total is always the book's.

Loud, never silent:

- a fill the ledger refuses (a sell of more shares than it holds: the book takes it, and a broker can report
  one) is logged at ERROR, counted in ``ledger_stats["unposted"]`` and kept in ``unposted`` (the newest
  ``MAX_UNPOSTED``); the cash it moved is posted against the ``suspense`` account, so the ledger's cash stays
  the book's and the unexplained amount stays visible;
- a difference after a fill (the book changed other than by a fill: ``book.cash`` or ``book.positions``
  assigned by hand after trading began) is logged at ERROR naming the difference in fen, counted in
  ``ledger_stats["disagreements"]``; :meth:`LedgeredBook.differences` lists every difference (the strategy
  logs them at the end of a run).

Opening: :meth:`LedgeredBook.open` sets the cash (and the positions, when given) and re-opens the ledger with
them: one opening transaction for the cash, one per position at its cost.  Before the first fill the book's own
state is the truth: a book whose cash or positions were assigned directly is followed (the ledger re-opens
from it, INFO), so ``strategy.book.cash = x`` before a run keeps working; after the first fill only
:meth:`open` re-opens, and a direct assignment is a reported difference.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from hkrt.core.logs import LogLimiter, log_limited
from hkrt.strategy.book import Book, Position, Trade
from hkrt.strategy.ledger import Ledger, LedgerError, split_fees, to_fen

__all__ = ["MAX_UNPOSTED", "LedgeredBook"]

log = logging.getLogger("hkrt.strategy.ledger")

MAX_UNPOSTED = 10_000  # refused fills kept for inspection (each one is logged and counted regardless)
_ERROR_INTERVAL = 60.0  # seconds between two ERROR lines of one kind (every case is counted)


def _fen_text(fen: int) -> str:
    return f"{fen} fen ({fen / 100:,.2f} yuan)"


class LedgeredBook(Book):
    """A :class:`Book` whose every fill is posted to ``ledger`` in the same call (module docstring).

    ``fee_model(broker)``: the ``FeeModel`` that priced the fills of the broker named ``broker`` (None: fees
    are posted as one unitemized total)."""

    def __init__(self, cash: float, *, fee_model: Callable[[str], Any] | None = None,
                 when: dt.datetime | None = None) -> None:  # fmt: skip
        super().__init__(cash)
        self.fee_model = fee_model
        self.ledger = Ledger(cash, when=when)
        self.unposted: deque[tuple[Trade, str]] = deque(maxlen=MAX_UNPOSTED)
        self.ledger_stats = {"posted": 0, "unposted": 0, "disagreements": 0, "reopened": 0, "followed": 0}
        self._fees_at_open = 0.0  # book.fees when the ledger was opened (the ledger's fees count from then)
        self._trading = False  # a fill was posted (or refused) since the ledger was opened
        self._limiter = LogLimiter(_ERROR_INTERVAL)

    # -- opening ----------------------------------------------------------------------------------------

    def open(self, cash: float, positions: Mapping[str, Position] | None = None, *,
             when: dt.datetime | None = None) -> Ledger:  # fmt: skip
        """Set the starting ``cash`` (``cash`` and ``initial_cash``) and, when given, the ``positions``, and
        re-open the ledger with them (each position at shares × its cost price).  Returns the new ledger.
        A ledger that had posted fills is replaced (WARNING: its history is left behind)."""
        if positions is not None:
            self.positions = dict(positions)
        self.cash = self.initial_cash = float(cash)
        if self._trading:
            kept = self.ledger.stats["transactions"]
            log.warning("the ledger re-opens: the %d transactions it held are left behind", kept,
                        extra={"transactions": kept})  # fmt: skip
        self._reopen(when)
        self.ledger_stats["reopened"] += 1
        return self.ledger

    def _reopen(self, when: dt.datetime | None) -> None:
        ledger = Ledger(self.cash, when=when, max_transactions=self.ledger.max_transactions)
        for symbol, p in sorted(self.positions.items()):
            if p.shares > 0:
                ledger.post_opening_position(when, symbol, int(p.shares), float(p.cost_price))
        self.ledger = ledger
        self._fees_at_open = self.fees
        self._trading = False

    def _follow(self, when: dt.datetime | None) -> None:
        """Before the first fill: a book set directly (``book.cash = x``) is the opening the ledger takes."""
        if self._trading or not self._opening_differs():
            return
        self._reopen(when)
        self.ledger_stats["followed"] += 1
        log.info("the book was set directly before trading: the ledger re-opened from it",
                 extra={"cash": self.cash, "positions": len(self.positions)})  # fmt: skip

    def _opening_differs(self) -> bool:
        ledger = self.ledger
        if ledger.balance_fen("cash") != to_fen(self.cash):
            return True
        held = {s: n for s, (n, _) in ledger.positions().items()}
        return held != {s: p.shares for s, p in self.positions.items() if p.shares}

    # -- fills ------------------------------------------------------------------------------------------

    def fill(
        self,
        when: dt.datetime,
        symbol: str,
        side: str,
        price: float,
        shares: int,
        order_id: str | None = None,
        *,
        fees: float = 0.0,
        trade_id: str = "",
        broker: str = "",
    ) -> Trade:
        """``Book.fill``, then the same fill posted to the ledger and the two compared."""
        self._follow(when)
        trade = super().fill(when, symbol, side, price, shares, order_id, fees=fees, trade_id=trade_id,
                             broker=broker)  # fmt: skip
        self._post(trade)
        self._trading = True
        self._compare_after(trade)
        return trade

    def _itemized(self, trade: Trade) -> Any:
        model = self.fee_model(trade.broker) if self.fee_model is not None else None
        if model is None or not trade.fees:
            return trade.fees
        return split_fees(trade.fees, model, trade.symbol, trade.side, trade.price, trade.shares,
                          trade.datetime.date())  # fmt: skip

    def _post(self, trade: Trade) -> None:
        try:
            self.ledger.post_trade(trade, self._itemized(trade))
        except Exception as err:  # the book has the fill already: never raise into the order manager
            self._unposted(trade, str(err) if isinstance(err, LedgerError) else f"{type(err).__name__}: {err}")
            return
        self.ledger_stats["posted"] += 1

    def _unposted(self, trade: Trade, why: str) -> None:
        self.ledger_stats["unposted"] += 1
        self.unposted.append((trade, why))
        amount = to_fen(Decimal(repr(float(trade.price))) * trade.shares)
        fees = to_fen(trade.fees)
        moved = -(amount + fees) if trade.side == "buy" else amount - fees
        if moved:
            try:  # the cash did move at the broker: keep it true, against suspense
                self.ledger.post_unexplained(trade.datetime, moved, f"unposted fill: {why}", trade_id=trade.trade_id,
                                             client_order_id=trade.client_order_id)  # fmt: skip
            except LedgerError:
                log.exception("the cash of an unposted fill could not be posted to suspense either")
        log_limited(log, logging.ERROR, "unposted",
                    f"the ledger could not post fill {trade.trade_id or '?'} ({trade.side} {trade.shares} "
                    f"{trade.symbol} @ {trade.price:g}): {why}; its cash went to suspense",
                    {"trade_id": trade.trade_id, "client_order_id": trade.client_order_id, "reason": why,
                     "unposted": self.ledger_stats["unposted"]}, _ERROR_INTERVAL, limiter=self._limiter)  # fmt: skip

    def _compare_after(self, trade: Trade) -> None:
        """After each fill: the ledger's cash and the traded symbol's shares against the book's (cheap)."""
        ledger_cash, book_cash = self.ledger.balance_fen("cash"), to_fen(self.cash)
        ledger_shares, book_shares = self.ledger.shares(trade.symbol), self.held(trade.symbol)
        if ledger_cash == book_cash and ledger_shares == book_shares:
            return
        self.ledger_stats["disagreements"] += 1
        parts = []
        if ledger_cash != book_cash:
            parts.append(f"cash ledger {ledger_cash} fen, book {book_cash} fen ({ledger_cash - book_cash:+d} fen)")
        if ledger_shares != book_shares:
            parts.append(f"{trade.symbol} ledger {ledger_shares} shares, book {book_shares}")
        log_limited(log, logging.ERROR, "disagreement",
                    f"ledger and book differ after fill {trade.trade_id or '?'}: " + "; ".join(parts),
                    {"trade_id": trade.trade_id, "disagreements": self.ledger_stats["disagreements"]},
                    _ERROR_INTERVAL, limiter=self._limiter)  # fmt: skip

    # -- checking ---------------------------------------------------------------------------------------

    def differences(self, when: dt.datetime | None = None) -> list[str]:
        """Every way the ledger and the book differ, one line each, amounts in fen ([] when they agree): the
        ledger's own ``check``, cash, shares per symbol, fees since the opening, money in suspense and fills
        the ledger could not post."""
        self._follow(when)
        found = []
        try:
            self.ledger.check()
        except LedgerError as err:
            found.append(f"the ledger does not add up: {err}")
        ledger_cash, book_cash = self.ledger.balance_fen("cash"), to_fen(self.cash)
        if ledger_cash != book_cash:
            found.append(f"cash: ledger {_fen_text(ledger_cash)}, book {_fen_text(book_cash)}, "
                         f"difference {ledger_cash - book_cash:+d} fen")  # fmt: skip
        ledger_held = {s: n for s, (n, _) in self.ledger.positions().items()}
        book_held = {s: p.shares for s, p in self.positions.items() if p.shares}
        for symbol in sorted(set(ledger_held) | set(book_held)):
            if ledger_held.get(symbol, 0) != book_held.get(symbol, 0):
                found.append(f"{symbol}: ledger {ledger_held.get(symbol, 0)} shares, book {book_held.get(symbol, 0)}")
        ledger_fees, book_fees = self.ledger.fees_fen(), to_fen(self.fees - self._fees_at_open)
        if ledger_fees != book_fees:
            found.append(f"fees: ledger {_fen_text(ledger_fees)}, book {_fen_text(book_fees)}, "
                         f"difference {ledger_fees - book_fees:+d} fen")  # fmt: skip
        suspense = self.ledger.balance_fen("suspense")
        if suspense:
            found.append(f"suspense holds {_fen_text(-suspense)} of cash the ledger could not explain")
        if self.ledger_stats["unposted"]:
            found.append(f"{self.ledger_stats['unposted']} fills could not be posted (strategy.book.unposted)")
        return found
