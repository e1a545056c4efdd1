"""Level-approach episodes on 2-minute candles (FEATURES.md §4, trigger rule and episode
windows). Kernel: a small resumable object; numpy/pandas only, no I/O.

Rule, per level type (pm_high, pm_low, or_high, or_low) and direction (``+1`` = approach
from below, ``-1`` = from above), with L the level and ε = ``eps``:

- a candle is *on the approach side* if ``H < L - ε`` (dir +1) / ``Lo > L + ε`` (dir -1);
  it *crosses* if ``H >= L + ε`` (dir +1) / ``Lo <= L - ε`` (dir -1);
- ``n_side`` counts consecutive on-side candles; a candle triggers when it crosses, the
  previous candle was on side and ``n_side`` before it was ``>= min_side_candles`` (2);
- after a trigger the (level, direction) is disarmed until a later candle *closes* at least
  ``reset_pts`` (1.0) on the approach side (``dir·(C - L) <= -reset_pts``); a new trigger
  also needs ``k - k_last > cooldown_candles`` (3); at most ``max_triggers`` (10) per level.

Choices where the spec is silent or ambiguous:

- *Considered from available_from*: a candle is looked at for a level only if it **starts**
  at or after the level's ``available_from`` (the 09:44 candle, which straddles 09:45 and
  overlaps the opening range, is not used for or_* levels; the first or_* candle is 09:46).
  ``n_side`` counts from there.
- *Cooldown*: "never within 3 candles of the last trigger" = the three candles after a
  trigger cannot trigger: a new trigger needs ``k - k_last >= 4``. (With ``n_side >= 2``
  required, ``k - k_last >= 3`` holds anyway, so the weaker reading would have no effect.)
- *Cap*: "at most 10 triggers per level per session" is counted per level type over both
  directions together (reset and cooldown are per level and direction).
- *Reset*: checked on the close of every candle after the trigger candle, after that
  candle's own trigger test (a candle's close cannot arm a trigger in the same candle).
- A NaN candle (empty candle without a mid) is neither on side nor crossing and does not
  reset.
- Episodes are emitted when their trigger candle is applied. ``confirm_in_window`` says
  whether the confirm candle (trigger + 1) starts before ``window_end`` (when it does not,
  no setup vector can be built); ``lookforward_complete`` whether all look-forward candles
  start before ``window_end``.
- Candle index ``k = (candle_ts - window_start) / candle_ns`` (window start = index 0).
  Candles must be applied in time order and contiguous (a gap raises).
- Levels whose value is null (empty window) are skipped; ``skipped_levels`` lists them.
- Candles without trades (O = H = L = C = mid) are treated like any other candle.
- Only closed candles may be applied (a candle is final at its ``close_ts``); an episode is
  thus known at its trigger candle's close, before its ``vector_time``.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..core.calendar import as_date, local_time_to_ns
from .candles import CANDLE_NS
from .levels import LEVEL_TYPES

STATE_FORMAT = "mbolake.approach.v1"
ES_TICK = 0.25

EPISODE_COLUMNS = [
    "episode_id", "contract_id", "session_date", "level_type", "level_price", "direction",
    "trigger_seq", "trigger_idx", "trigger_ts", "confirm_idx", "confirm_ts", "vector_time",
    "lookback_start_idx", "lookback_start_ts", "lookforward_start_idx", "lookforward_end_idx",
    "lookforward_end_ts", "confirm_in_window", "lookforward_complete",
]


@dataclass(frozen=True)
class ApproachParams:
    """Trigger-rule and window parameters; defaults are the ES values of FEATURES.md §4."""

    candle_ns: int = CANDLE_NS
    eps: float = 0.01
    min_side_candles: int = 2
    reset_pts: float = 1.0
    cooldown_candles: int = 3
    max_triggers: int = 10
    lookback: int = 6  # candles ending at confirm (positions -5..0)
    lookforward: int = 6

    @classmethod
    def for_tick(cls, tick_size: float, **overrides) -> "ApproachParams":
        """Point thresholds scaled from the ES defaults (tick 0.25) to another tick size."""
        f = tick_size / ES_TICK
        base = cls()
        kw = dict(eps=base.eps * f, reset_pts=base.reset_pts * f)
        kw.update(overrides)
        return cls(**kw)


def episode_id(contract_id: str, session_date: str, level_type: str, direction: int, trigger_ts: int) -> str:
    return f"{contract_id}|{session_date}|{level_type}|{int(direction):+d}|{int(trigger_ts)}"


class ApproachDetector:
    """Resumable trigger detector for one (contract, session).

    ``apply(candles)`` takes the next candles (DataFrame with ``candle_ts``, ``high``,
    ``low``, ``close``; e.g. from :func:`mbolake.features.candles.build_candles`) and
    returns the episodes triggered in them (DataFrame, columns :data:`EPISODE_COLUMNS`).
    Feeding a session in chunks gives the same episodes as feeding it whole, also across
    ``state_bytes()`` / ``from_state_bytes()``.

    ``levels``: a :func:`mbolake.features.levels.session_levels` dict, or a mapping
    ``{level_type: (price, available_from_ns)}``. Times (``window_start``, ``window_end``,
    ``trigger_start``, ``trigger_end``) are local ``(hour, minute)`` of ``session_date`` in
    ``timezone``; ``*_ns`` keyword overrides take ns UTC directly.
    """

    def __init__(
        self,
        contract_id: str,
        session_date,
        levels: Mapping[str, Any],
        timezone: str = "America/New_York",
        params: ApproachParams | None = None,
        window_start: tuple[int, int] = (8, 30),
        window_end: tuple[int, int] = (12, 30),
        trigger_start: tuple[int, int] = (9, 30),
        trigger_end: tuple[int, int] = (12, 30),
        **ns_overrides: int,
    ):
        day = as_date(session_date)
        self.contract_id = str(contract_id)
        self.session_date = day.isoformat()
        self.params = params or ApproachParams()
        t = {
            "window_start_ns": local_time_to_ns(day, *window_start, timezone),
            "window_end_ns": local_time_to_ns(day, *window_end, timezone),
            "trigger_start_ns": local_time_to_ns(day, *trigger_start, timezone),
            "trigger_end_ns": local_time_to_ns(day, *trigger_end, timezone),
        }
        for key, val in ns_overrides.items():
            if key not in t:
                raise TypeError(f"unknown argument {key!r}")
            t[key] = int(val)
        self.window_start_ns = t["window_start_ns"]
        self.window_end_ns = t["window_end_ns"]
        self.trigger_start_ns = t["trigger_start_ns"]
        self.trigger_end_ns = t["trigger_end_ns"]
        if self.window_start_ns % self.params.candle_ns:
            raise ValueError("window_start must be on the candle grid")

        self.levels: dict[str, tuple[float, int]] = {}
        self.skipped_levels: list[str] = []
        for lt in LEVEL_TYPES:
            if lt in levels and isinstance(levels[lt], (tuple, list)):
                px, avail = levels[lt]
            elif lt in levels:
                px, avail = levels[lt], levels.get(f"{lt[:2]}_available_from")
            else:
                px, avail = None, None
            if px is None or avail is None or not np.isfinite(float(px)):
                self.skipped_levels.append(lt)
                continue
            self.levels[lt] = (float(px), int(avail))
        # mutable state
        self.last_idx: int | None = None
        self.n_triggers = {lt: 0 for lt in self.levels}
        self.side = {
            f"{lt}|{d:+d}": {"n_side": 0, "prev_on_side": False, "armed": True, "last_trigger": None}
            for lt in self.levels for d in (1, -1)
        }

    # ---- processing ----
    def apply(self, candles: pd.DataFrame) -> pd.DataFrame:
        p = self.params
        ts = np.asarray(candles["candle_ts"], dtype=np.int64)
        hi = np.asarray(candles["high"], dtype=np.float64)
        lo = np.asarray(candles["low"], dtype=np.float64)
        cl = np.asarray(candles["close"], dtype=np.float64)
        out = []
        for i in range(ts.size):
            off = int(ts[i]) - self.window_start_ns
            if off % p.candle_ns:
                raise ValueError(f"candle at {int(ts[i])} is not on the {p.candle_ns} ns grid")
            k = off // p.candle_ns
            if self.last_idx is not None and k != self.last_idx + 1:
                raise ValueError(f"candles must be contiguous and in order: index {k} after {self.last_idx}")
            self.last_idx = k
            out.extend(self._step(k, int(ts[i]), float(hi[i]), float(lo[i]), float(cl[i])))
        return pd.DataFrame(out, columns=EPISODE_COLUMNS)

    def _step(self, k: int, t: int, h: float, l: float, c: float) -> list[dict]:
        p = self.params
        eps = p.eps
        in_trigger_window = self.trigger_start_ns <= t < self.trigger_end_ns
        episodes = []
        for lt in LEVEL_TYPES:
            if lt not in self.levels:
                continue
            lvl, avail = self.levels[lt]
            if t < avail:
                continue
            for d in (1, -1):
                s = self.side[f"{lt}|{d:+d}"]
                if d > 0:
                    on_side, crosses = h < lvl - eps, h >= lvl + eps
                else:
                    on_side, crosses = l > lvl + eps, l <= lvl - eps
                if (
                    crosses
                    and in_trigger_window
                    and s["prev_on_side"]
                    and s["n_side"] >= p.min_side_candles
                    and s["armed"]
                    and (s["last_trigger"] is None or k - s["last_trigger"] > p.cooldown_candles)
                    and self.n_triggers[lt] < p.max_triggers
                ):
                    self.n_triggers[lt] += 1
                    s["armed"] = False
                    s["last_trigger"] = k
                    episodes.append(self._episode(lt, lvl, d, k, t, self.n_triggers[lt]))
                elif not s["armed"] and d * (c - lvl) <= -p.reset_pts:
                    s["armed"] = True
                s["n_side"] = s["n_side"] + 1 if on_side else 0
                s["prev_on_side"] = bool(on_side)
        return episodes

    def _episode(self, lt: str, lvl: float, d: int, k: int, t: int, seq: int) -> dict:
        p = self.params
        cn = p.candle_ns
        confirm_ts = t + cn
        lf_end_idx = k + 1 + p.lookforward
        return {
            "episode_id": episode_id(self.contract_id, self.session_date, lt, d, t),
            "contract_id": self.contract_id,
            "session_date": self.session_date,
            "level_type": lt,
            "level_price": lvl,
            "direction": d,
            "trigger_seq": seq,
            "trigger_idx": k,
            "trigger_ts": t,
            "confirm_idx": k + 1,
            "confirm_ts": confirm_ts,
            "vector_time": confirm_ts + cn,
            "lookback_start_idx": k + 1 - (p.lookback - 1),
            "lookback_start_ts": confirm_ts - (p.lookback - 1) * cn,
            "lookforward_start_idx": k + 2,
            "lookforward_end_idx": lf_end_idx,
            "lookforward_end_ts": self.window_start_ns + lf_end_idx * cn + cn,
            "confirm_in_window": confirm_ts < self.window_end_ns,
            "lookforward_complete": self.window_start_ns + lf_end_idx * cn < self.window_end_ns,
        }

    # ---- checkpoint ----
    def state_bytes(self) -> bytes:
        doc = {
            "format": STATE_FORMAT,
            "contract_id": self.contract_id,
            "session_date": self.session_date,
            "params": dataclasses.asdict(self.params),
            "window_start_ns": self.window_start_ns,
            "window_end_ns": self.window_end_ns,
            "trigger_start_ns": self.trigger_start_ns,
            "trigger_end_ns": self.trigger_end_ns,
            "levels": {lt: [px, av] for lt, (px, av) in self.levels.items()},
            "skipped_levels": self.skipped_levels,
            "last_idx": self.last_idx,
            "n_triggers": self.n_triggers,
            "side": self.side,
        }
        return json.dumps(doc, sort_keys=True).encode("utf-8")

    @classmethod
    def from_state_bytes(cls, data: bytes) -> "ApproachDetector":
        doc = json.loads(data.decode("utf-8"))
        if doc.get("format") != STATE_FORMAT:
            raise ValueError(f"not an approach detector state (expected format {STATE_FORMAT!r})")
        det = cls.__new__(cls)
        det.contract_id = doc["contract_id"]
        det.session_date = doc["session_date"]
        det.params = ApproachParams(**doc["params"])
        for key in ("window_start_ns", "window_end_ns", "trigger_start_ns", "trigger_end_ns", "last_idx"):
            setattr(det, key, doc[key])
        det.levels = {lt: (float(v[0]), int(v[1])) for lt, v in doc["levels"].items()}
        det.skipped_levels = list(doc["skipped_levels"])
        det.n_triggers = {lt: int(v) for lt, v in doc["n_triggers"].items()}
        det.side = {key: dict(v) for key, v in doc["side"].items()}
        return det


def detect_episodes(candles: pd.DataFrame, contract_id: str, session_date, levels, **kwargs) -> pd.DataFrame:
    """Whole-session convenience: one :class:`ApproachDetector` over all ``candles``."""
    return ApproachDetector(contract_id, session_date, levels, **kwargs).apply(candles)
