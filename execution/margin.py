"""Margin arithmetic of a Binance-style USDT-M linear perpetual, as pure functions.

Formulas follow Binance's published liquidation-price method for one-way mode
("How to Calculate Liquidation Price of USDⓈ-M Futures Contracts"):

    LP = (WB - TMM + UPNL + cum - s * Q * EP) / (Q * MMR - s * Q)

with WB the wallet balance backing the position (isolated margin, or the cross wallet),
TMM and UPNL the maintenance margin and unrealised P&L of *other* cross positions (zero
for isolated), cum the bracket's maintenance amount, s = +1 long / -1 short, Q the
absolute size, EP the entry price and MMR the bracket's maintenance margin rate. The
bracket depends on the notional at LP, so every bracket is tried and the consistent one
kept.
"""

from __future__ import annotations

from core.instrument import Instrument

# Relative slack on a bracket's notional range: at a cap both neighbouring brackets give
# the same price, but rounding can push each one's notional just outside its own range.
_BRACKET_EDGE_TOLERANCE = 1e-9


def unrealized_pnl(quantity: float, entry_price: float, mark_price: float) -> float:
    return quantity * (mark_price - entry_price)


def initial_margin(quantity: float, price: float, leverage: float) -> float:
    return abs(quantity) * price / leverage


def liquidation_price(
    instrument: Instrument,
    quantity: float,
    entry_price: float,
    backing_balance: float,
) -> float | None:
    """Mark price at which equity backing this position equals its maintenance margin.

    `backing_balance` is WB - TMM + UPNL of the formula above: the isolated margin for an
    isolated position; for cross, the cross wallet less other positions' maintenance
    margin plus their unrealised P&L. None when the position cannot be liquidated
    (e.g. a 1x long whose liquidation price would be at or below zero).
    """
    if quantity == 0.0:
        return None
    side = 1.0 if quantity > 0 else -1.0
    size = abs(quantity)
    lower_cap = 0.0
    for bracket in instrument.brackets:
        denominator = size * bracket.maintenance_rate - side * size
        price = (backing_balance + bracket.maintenance_amount - side * size * entry_price) / denominator
        notional = size * price
        slack = _BRACKET_EDGE_TOLERANCE * abs(notional)
        if price > 0 and lower_cap - slack <= notional <= bracket.notional_cap + slack:
            return price
        lower_cap = bracket.notional_cap
    return None
