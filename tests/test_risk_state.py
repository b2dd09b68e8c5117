"""The trading state machine and the risk config's refusals of impossible limits."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from hkrt.strategy.risk import ACTIVE, HALTED, REDUCING, RiskConfig, RiskConfigError, TradingState


def test_state_moves_and_history() -> None:
    state = TradingState()
    t = dt.datetime(2026, 11, 20, 10, 0)
    assert state.state == ACTIVE
    assert state.change(REDUCING, "daily loss", t)
    assert not state.change(REDUCING, "daily loss", t)  # no change: not recorded twice
    assert state.change(HALTED, "kill switch", t)
    assert not state.change(REDUCING, "daily loss again", t)  # a breach never softens HALTED
    assert state.state == HALTED and state.reason == "kill switch"
    assert state.change(ACTIVE, "resumed by hand", t)
    assert [c.state for c in state.history] == [REDUCING, HALTED, ACTIVE]
    with pytest.raises(ValueError, match="not one of"):
        state.change("PAUSED", "x", t)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_ordr_value": 1}, "unknown key 'max_ordr_value' (did you mean max_order_value?)"),
        ({"max_position_pct": 1.5}, "max_position_pct is a share of 1"),
        ({"max_order_value": -5}, "max_order_value must be a positive number"),
        ({"max_orders_per_second": 300}, "high-frequency threshold"),
        ({"max_orders_per_day": 20_000}, "high-frequency threshold"),
        ({"max_orders_per_second": 50, "max_orders_per_day": 10}, "above max_orders_per_day"),
        ({"max_orders_per_day": None}, "cannot be switched off"),
        ({"max_positions": 2.5}, "whole number"),
        ({"daily_loss_action": "ACTIVE"}, "REDUCING or HALTED"),
        ({"trading_hours": "yes"}, "true or false"),
    ],
)
def test_impossible_limits_are_one_line(values: dict[str, object], message: str) -> None:
    with pytest.raises(RiskConfigError, match=re.escape(message)) as err:
        RiskConfig.load(values)
    assert "\n" not in str(err.value) and str(err.value).startswith("risk: ")


def test_toml_config(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "risk.toml"
    path.write_text("[risk]\nmax_order_value = 200000\nmax_positions = 5\nprice_band = 0.03\n", encoding="utf-8")
    config = RiskConfig.load(path)
    assert (config.max_order_value, config.max_positions, config.price_band) == (200000, 5, 0.03)
    path.write_text("[risk]\nmax_position = 5\n", encoding="utf-8")
    with pytest.raises(RiskConfigError, match=r"unknown key 'max_position' in .*risk.toml"):
        RiskConfig.load(path)
    with pytest.raises(RiskConfigError, match="does not exist"):
        RiskConfig.load(tmp_path / "missing.toml")
