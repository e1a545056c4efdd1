"""Stage engines: where a stage's per-group function runs and how its tables are read and
written (``base.Engine``). ``local`` (delta-rs on the driver) is the embedded default,
``spark`` the cluster choice; a streaming engine implements the same interface."""
from __future__ import annotations

from ..runtime.context import Context
from .base import CONTRACT_SESSION, Condition, Engine, Source, in_dates, where

ENGINES = ("local", "spark")

__all__ = ["CONTRACT_SESSION", "Condition", "ENGINES", "Engine", "Source", "engine_for", "in_dates",
           "stage_engine", "where"]


def stage_engine(ctx: Context, engine: str | None = None) -> str:
    """The engine a stage runs on: the argument, else the profile's ``compute.stage_engine``, else spark."""
    chosen = engine or (ctx.profile.settings.get("compute") or {}).get("stage_engine", "spark")
    if chosen not in ENGINES:
        raise ValueError(f"stage engine must be one of {ENGINES}, got {chosen!r}")
    return chosen


def engine_for(ctx: Context, stage: str, engine: str | None = None) -> Engine:
    """A fresh engine for one run of ``stage`` (its inputs get pinned as it reads them)."""
    if stage_engine(ctx, engine) == "local":
        from .local import LocalEngine

        return LocalEngine(ctx, stage)
    from .spark import SparkEngine

    return SparkEngine(ctx, stage)
