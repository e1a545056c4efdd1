"""The tutorial's views that need no lake: the book ladder of one state row, the served model's
answer as tables (the ones that read the lake run in the tutorial, tests/realtime/test_tutorial.py)."""
from __future__ import annotations

import pandas as pd

from mbolake.core.constants import FIXED_SCALE
from mbolake.views import episode


def state_row() -> dict:
    row = {}
    for side, best, step in (("bid", 6000.0, -0.25), ("ask", 6000.25, 0.25)):
        for i in range(10):
            empty = side == "ask" and i >= 8  # the ask side holds eight levels
            row[f"{side}_px_{i:02d}"] = None if empty else int(round((best + i * step) * FIXED_SCALE))
            row[f"{side}_sz_{i:02d}"] = 0 if empty else 10 + i
            row[f"{side}_ct_{i:02d}"] = 0 if empty else 1 + i
    return row


def test_a_state_row_reads_as_a_ladder_in_points():
    ladder = episode.book_ladder_from_row(state_row())
    assert list(ladder.columns) == ["bid_orders", "bid_size", "bid_px", "ask_px", "ask_size", "ask_orders"]
    assert list(ladder.index) == list(range(10)) and ladder.index.name == "level"
    assert ladder.loc[0].to_dict() == {"bid_orders": 1, "bid_size": 10, "bid_px": 6000.0, "ask_px": 6000.25,
                                       "ask_size": 10, "ask_orders": 1}
    assert ladder.loc[9, "bid_px"] == 5997.75
    assert pd.isna(ladder.loc[8, "ask_px"]) and ladder.loc[8, "ask_size"] == 0


def test_the_served_answer_reads_as_tables():
    setups = pd.DataFrame({"setup": [3], "episode_id": ["ESZ5|2025-11-05|or_high|+1|1"], "outcome": ["REJECT"]})
    answer = pd.DataFrame({"p_REJECT": [0.61234], "p_BREAK": [0.2], "p_CHOP": [0.18766], "predicted": ["REJECT"]})
    scores = episode.scores_table(answer, setups)
    assert list(scores.columns) == ["p_BREAK", "p_CHOP", "p_REJECT", "predicted", "labelled"]
    assert scores.loc[3, "p_REJECT"] == 0.612 and scores.loc[3, "labelled"] == "REJECT"

    similar = [{"episode_id": "a", "session_date": "2024-05-20T00:00:00", "level_type": "pm_low",
                "approach_direction": -1, "outcome": "BREAK", "distance": 1.23456},
               {"episode_id": "b", "session_date": "2024-05-21", "level_type": "or_high",
                "approach_direction": 1, "outcome": "CHOP", "distance": 2.5}]
    table = episode.similar_setups_table(similar)
    assert list(table.index) == [1, 2] and table.index.name == "rank"
    assert table["session_date"].tolist() == ["2024-05-20", "2024-05-21"]
    assert table["distance"].tolist() == [1.235, 2.5]
    assert episode.similar_setups_table(None).empty
