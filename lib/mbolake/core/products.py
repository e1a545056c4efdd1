"""Products are configuration (DESIGN.md §4): venue, calendar, tick size, model family."""
from __future__ import annotations

from dataclasses import dataclass


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


def instrument_type_of(symbol: str | None, default: str) -> str:
    """SPREAD for calendar spreads (ESZ5-ESH6), OPT for options (ESZ5 C5000), else the product's type."""
    if symbol is None:
        return default
    if "-" in symbol:
        return "SPREAD"
    if " " in symbol.strip():
        return "OPT"
    return default
