"""Money as whole micro-dollars (1 USD = 1,000,000 µUSD): no floats in storage or sums.

USD amounts are read from text (``"5.00"``) and shown as text with six decimals, so a value
never passes through a binary float. No Dapr here: the CLI and the gateway share it.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MICRO = 1_000_000


def micro_usd(amount: str | int | Decimal) -> int:
    """``amount`` USD in whole micro-dollars; ValueError when it is not a non-negative amount
    with at most six decimals."""
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        raise ValueError(f"'{amount}' is not an amount of USD (write it like 5.00)") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"'{amount}' is not an amount of USD (write it like 5.00)")
    micro = value * MICRO
    if micro != micro.to_integral_value():
        raise ValueError(f"'{amount}' USD has more than 6 decimals (the unit is 1 micro-dollar)")
    return int(micro)


def usd(micro: int) -> str:
    """Whole micro-dollars as USD text with six decimals: ``1500000`` → ``"1.500000"``."""
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), MICRO)
    return f"{sign}{whole}.{frac:06d}"


def cost_micro_usd(tokens: int, micro_usd_per_1m: int) -> int:
    """The price of ``tokens`` at ``micro_usd_per_1m`` µUSD per million tokens, rounded up to
    the next whole micro-dollar (a budget is never undercounted)."""
    return -(-tokens * micro_usd_per_1m // MICRO)
