"""Products are configuration (DESIGN.md §4): venue, calendar, tick size, model family."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

QUARTERLY_MONTH_CODES = {3: "H", 6: "M", 9: "U", 12: "Z"}
ROLL_DAYS_BEFORE_EXPIRY = 8  # CME equity-index roll date: the Thursday 8 days before the 3rd-Friday expiry


@dataclass(frozen=True)
class Product:
    underlier: str
    venue: str  # Databento dataset
    instrument_type: str  # FUT or STK: what the landing folder holds
    tick_size: float  # points
    timezone: str
    session_start_hour: int  # local hour at which the next date's session opens (0 = calendar date)
    premarket_start: tuple[int, int]
    model_id: str

    @property
    def tick_fixed(self) -> int:
        return round(self.tick_size * 1e9)


PRODUCTS = {
    "ES": Product("ES", "GLBX.MDP3", "FUT", 0.25, "America/New_York", 18, (5, 0), "ES_MODEL"),
    "TSLA": Product("TSLA", "XNAS.ITCH", "STK", 0.01, "America/New_York", 0, (4, 0), "TSLA_MODEL"),
}


def get_product(underlier: str) -> Product:
    try:
        return PRODUCTS[underlier]
    except KeyError:
        raise ValueError(f"unknown underlier {underlier!r}; configured: {', '.join(PRODUCTS)}") from None


def product_of_contract(contract_id: str) -> Product:
    """The product a contract id (``{venue}:{symbol}``, e.g. ``GLBX.MDP3:ESZ5``) belongs to: the
    configured product of that venue whose underlier starts the symbol (the longest such)."""
    venue, _, symbol = str(contract_id).partition(":")
    matches = [p for p in PRODUCTS.values() if p.venue == venue and symbol.startswith(p.underlier)]
    if not matches:
        raise ValueError(f"no configured product for contract {contract_id!r} (contract ids are venue:symbol; "
                         f"configured: {', '.join(f'{p.venue}:{p.underlier}…' for p in PRODUCTS.values())})")
    return max(matches, key=lambda p: len(p.underlier))


def third_friday(year: int, month: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(4 - first.weekday()) % 7 + 14)


def front_month_symbol(product: Product, session_date: dt.date) -> str:
    """The front-month symbol of a session by the roll calendar, a rule that needs no future.

    Quarterly futures (ES): the nearest March/June/September/December contract whose roll
    date (8 days before its third-Friday expiry) is after the session; from the roll date on,
    the next one (``ESZ5`` until 2025-12-10, ``ESH6`` from 2025-12-11). An equity's only
    symbol is its underlier. Batch (SilverNormalizeMBO) and the stream (rt silver) both use
    this, so a stream knows a session's front month at its first record, as batch does.
    """
    if product.instrument_type != "FUT":
        return product.underlier
    year, month = session_date.year, session_date.month
    while True:
        if month in QUARTERLY_MONTH_CODES:
            roll = third_friday(year, month) - dt.timedelta(days=ROLL_DAYS_BEFORE_EXPIRY)
            if session_date < roll:
                return f"{product.underlier}{QUARTERLY_MONTH_CODES[month]}{year % 10}"
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def front_month_contract(product: Product, session_date: dt.date) -> str:
    """``{venue}:{symbol}`` of the session's front month (see :func:`front_month_symbol`)."""
    return f"{product.venue}:{front_month_symbol(product, session_date)}"


def instrument_type_of(symbol: str | None, default: str) -> str:
    """SPREAD for calendar spreads (ESZ5-ESH6), OPT for options (ESZ5 C5000), else the product's type."""
    if symbol is None:
        return default
    if "-" in symbol:
        return "SPREAD"
    if " " in symbol.strip():
        return "OPT"
    return default
