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


def product_of_contract(contract_id: str) -> Product:
    """The product a contract id (``{venue}:{symbol}``, e.g. ``GLBX.MDP3:ESZ5``) belongs to: the
    configured product of that venue whose underlier starts the symbol (the longest such)."""
    venue, _, symbol = str(contract_id).partition(":")
    matches = [p for p in PRODUCTS.values() if p.venue == venue and symbol.startswith(p.underlier)]
    if not matches:
        raise ValueError(f"no configured product for contract {contract_id!r} (contract ids are venue:symbol; "
                         f"configured: {', '.join(f'{p.venue}:{p.underlier}…' for p in PRODUCTS.values())})")
    return max(matches, key=lambda p: len(p.underlier))


def instrument_type_of(symbol: str | None, default: str) -> str:
    """SPREAD for calendar spreads (ESZ5-ESH6), OPT for options (ESZ5 C5000), else the product's type."""
    if symbol is None:
        return default
    if "-" in symbol:
        return "SPREAD"
    if " " in symbol.strip():
        return "OPT"
    return default
