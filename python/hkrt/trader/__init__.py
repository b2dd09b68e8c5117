"""The trader process: a strategy's broker in a process of its own (docs/trader-process.md).

A broker call that hangs (an easytrader server trickling its answer, a QMT terminal that froze) must never
block a strategy's callback thread.  ``hkrt trader`` hosts one real broker and executes its calls on worker
threads of its own (:mod:`hkrt.trader.server`); the strategy holds a :class:`~hkrt.trader.remote_broker.RemoteBroker`,
whose ``submit`` hands the order to a bounded outbox and returns at once; what the broker answers and reports
comes back over nng as ``ExecutionReport`` events on the strategy's bus.

This package is imported only by what uses it: ``hkrt.trader.protocol`` and ``hkrt.trader.remote_broker``
(the strategy's side, no broker is loaded) and ``hkrt.trader.server`` (the process, which builds the broker).
"""
