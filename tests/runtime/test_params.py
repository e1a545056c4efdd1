"""mbolake.runtime.params: defaults < injected globals < Databricks widgets < overrides, coercion, validation."""
from __future__ import annotations

import datetime as dt
import importlib
import types

import pytest

from mbolake import Param, ParameterError, params

# ``mbolake.params`` is the function (re-exported by the package); the module is here:
params_module = importlib.import_module("mbolake.runtime.params")

SPEC = {
    "profile": Param(str, "local"),
    "sessions": Param(int, 3, min=1, max=250),
    "first_date": Param(dt.date, dt.date(2025, 11, 3)),
    "overwrite": Param(bool, False),
    "max_cost_usd": Param(float, 50.0, min=0.0),
    "underlier": Param(str, "ES", choices=("ES", "TSLA")),
    "symbols": Param(list, ["ESZ5"]),
    "start_date": Param(dt.date, None, optional=True),
}


@pytest.fixture(autouse=True)
def no_widgets(monkeypatch):
    """Outside Databricks there are no widgets; make that explicit whatever the test runner is."""
    monkeypatch.setattr(params_module, "_widget_values", lambda names: {})


def test_defaults():
    p = params(SPEC)
    assert p == {
        "profile": "local",
        "sessions": 3,
        "first_date": dt.date(2025, 11, 3),
        "overwrite": False,
        "max_cost_usd": 50.0,
        "underlier": "ES",
        "symbols": ["ESZ5"],
        "start_date": None,
    }
    assert p.sessions == 3 and p.first_date == dt.date(2025, 11, 3)
    with pytest.raises(AttributeError):
        p.nonexistent  # noqa: B018 (the attribute access is what raises)


def test_injected_globals_override_defaults_and_other_globals_are_ignored():
    injected = {"sessions": 5, "first_date": "2025-11-10", "unrelated": object(), "__name__": "__main__"}
    p = params(SPEC, injected)
    assert p.sessions == 5
    assert p.first_date == dt.date(2025, 11, 10)
    assert p.profile == "local"
    assert "unrelated" not in p and "__name__" not in p


def test_overrides_beat_injected():
    p = params(SPEC, {"sessions": 5, "underlier": "ES"}, sessions=7, underlier="TSLA")
    assert p.sessions == 7
    assert p.underlier == "TSLA"


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("sessions", "12", 12),
        ("sessions", " 42 ", 42),
        ("sessions", 9.0, 9),
        ("first_date", "2025-11-03", dt.date(2025, 11, 3)),
        ("first_date", dt.datetime(2025, 11, 4, 13, 30), dt.date(2025, 11, 4)),
        ("overwrite", "true", True),
        ("overwrite", "false", False),
        ("overwrite", "TRUE", True),
        ("overwrite", "0", False),
        ("overwrite", 1, True),
        ("max_cost_usd", "12.5", 12.5),
        ("max_cost_usd", 3, 3.0),
        ("symbols", "a,b", ["a", "b"]),
        ("symbols", " ESZ5 , ESH6 ,", ["ESZ5", "ESH6"]),
        ("symbols", ("x",), ["x"]),
        ("profile", 5, "5"),
    ],
)
def test_coercion(name, value, expected):
    assert params(SPEC, {name: value})[name] == expected
    assert type(params(SPEC, {name: value})[name]) is type(expected)


def test_int_with_underscores():
    spec = {"intensity": Param(int, 400_000, min=10_000, max=200_000_000)}
    assert params(spec, {"intensity": "1_000_000"}).intensity == 1_000_000
    assert params(spec, intensity="20_000").intensity == 20_000


def test_optional_none_and_value():
    assert params(SPEC, {"start_date": None}).start_date is None
    assert params(SPEC, {"start_date": "2025-11-05"}).start_date == dt.date(2025, 11, 5)


def test_optional_blank_string_means_none():
    # Databricks widgets and `-p start_date=` can only pass an empty string for "not set";
    # the notebooks document "empty for all" for their optional parameters.
    spec = {
        "start_date": Param(dt.date, None, optional=True),
        "instrument_type": Param(str, "FUT", choices=("FUT", "STK", "OPT"), optional=True),
    }
    p = params(spec, {"start_date": "", "instrument_type": "  "})
    assert p.start_date is None
    assert p.instrument_type is None


def _error(spec, injected=None, **overrides) -> str:
    with pytest.raises(ParameterError) as info:
        params(spec, injected, **overrides)
    return str(info.value)


@pytest.mark.parametrize(
    "injected, name, fragment",
    [
        ({"sessions": "three"}, "sessions", "not a valid int"),
        ({"sessions": 2.5}, "sessions", "not a valid int"),
        ({"sessions": True}, "sessions", "not a valid int"),
        ({"first_date": "2025-13-01"}, "first_date", "not a valid date"),
        ({"overwrite": "maybe"}, "overwrite", "not a valid bool"),
        ({"overwrite": 1.5}, "overwrite", "not a valid bool"),
        ({"max_cost_usd": "cheap"}, "max_cost_usd", "not a valid float"),
        ({"max_cost_usd": False}, "max_cost_usd", "not a valid float"),
        ({"sessions": 0}, "sessions", "below the minimum 1"),
        ({"sessions": "251"}, "sessions", "above the maximum 250"),
        ({"max_cost_usd": -0.01}, "max_cost_usd", "below the minimum 0.0"),
        ({"underlier": "NQ"}, "underlier", "'NQ' is not one of ['ES', 'TSLA']"),
        ({"sessions": None}, "sessions", "required"),
    ],
)
def test_failures_name_the_parameter(injected, name, fragment):
    message = _error(SPEC, injected)
    assert f"parameter {name!r}" in message
    assert fragment in message


def test_required_without_default_is_missing():
    spec = {"start_date": Param(dt.date, None, help="first UTC date")}
    message = _error(spec, {})
    assert "parameter 'start_date' is required" in message
    assert "first UTC date" in message


def test_list_items_checked_against_choices():
    spec = {"underliers": Param(list, ["ES"], choices=("ES", "TSLA"))}
    assert params(spec, {"underliers": "ES,TSLA"}).underliers == ["ES", "TSLA"]
    message = _error(spec, {"underliers": "ES,NQ"})
    assert "parameter 'underliers'" in message and "'NQ'" in message


def test_date_range_limits():
    spec = {"day": Param(dt.date, dt.date(2025, 1, 2), min=dt.date(2025, 1, 1), max=dt.date(2025, 12, 31))}
    assert params(spec, day="2025-12-31").day == dt.date(2025, 12, 31)
    assert "below the minimum" in _error(spec, day="2024-12-31")
    assert "above the maximum" in _error(spec, day="2026-01-01")


def test_unknown_override_is_an_error():
    message = _error(SPEC, sesions=4)
    assert "unknown parameter 'sesions'" in message
    assert "sessions" in message.split("known:")[1]


def test_first_bad_parameter_stops_before_later_ones():
    message = _error(SPEC, {"sessions": 0, "underlier": "NQ"})
    assert "'sessions'" in message and "NQ" not in message


# --- Databricks widgets -----------------------------------------------------------------


class _FakeWidgets:
    def __init__(self, values):
        self.values = values
        self.asked = []

    def get(self, name):
        self.asked.append(name)
        if name not in self.values:  # dbutils raises for a widget the job did not define
            raise RuntimeError(f"InputWidgetNotDefined: {name}")
        return self.values[name]


def _fake_ipython(monkeypatch, widget_values):
    import IPython

    widgets = _FakeWidgets(widget_values)
    shell = types.SimpleNamespace(user_ns={"dbutils": types.SimpleNamespace(widgets=widgets)})
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    return widgets


def test_widget_values_read_dbutils_from_the_ipython_namespace(monkeypatch):
    monkeypatch.undo()  # the real _widget_values
    widgets = _fake_ipython(monkeypatch, {"sessions": "9"})
    assert params_module._widget_values(["sessions", "profile"]) == {"sessions": "9"}
    assert widgets.asked == ["sessions", "profile"]


def test_no_ipython_means_no_widgets(monkeypatch):
    monkeypatch.undo()
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert params_module._widget_values(["sessions"]) == {}


def test_widgets_beat_injected_and_overrides_beat_widgets(monkeypatch):
    monkeypatch.undo()
    _fake_ipython(monkeypatch, {"sessions": "9", "overwrite": "true", "first_date": "2025-12-01"})
    p = params(SPEC, {"sessions": 5, "overwrite": False, "underlier": "TSLA"})
    assert p.sessions == 9  # widget (a string) beats the injected 5, and is coerced
    assert p.overwrite is True
    assert p.first_date == dt.date(2025, 12, 1)
    assert p.underlier == "TSLA"  # no widget: the injected value stays
    assert params(SPEC, {"sessions": 5}, sessions=11).sessions == 11


def test_bad_widget_value_names_the_parameter(monkeypatch):
    monkeypatch.setattr(params_module, "_widget_values", lambda names: {"sessions": "lots"})
    message = _error(SPEC, {"sessions": 5})
    assert "parameter 'sessions'" in message and "'lots'" in message


def test_resolved_renders_markdown():
    md = params({"sessions": Param(int, 3)})._repr_markdown_()
    assert "| `sessions` | `3` |" in md


def test_times_parse_from_hh_mm_and_bad_ones_name_the_parameter():
    spec = {"window_start": Param(dt.time, dt.time(8, 30))}
    assert params(spec, {"window_start": "09:15"}).window_start == dt.time(9, 15)
    assert params(spec, {}).window_start == dt.time(8, 30)
    with pytest.raises(ParameterError, match="window_start.*'9h15'.*time"):
        params(spec, {"window_start": "9h15"})


RANGE = {"start_date": Param(dt.date, None, optional=True),
         "end_date": Param(dt.date, None, optional=True, not_before="start_date")}


def test_end_date_before_start_date_fails_naming_both():
    with pytest.raises(ParameterError, match="parameter 'end_date': 2025-11-03 is before start_date 2025-11-05"):
        params(RANGE, {"start_date": "2025-11-05", "end_date": "2025-11-03"})


@pytest.mark.parametrize("start, end", [("2025-11-05", "2025-11-05"), ("2025-11-03", "2025-11-05"),
                                        (None, "2025-11-05"), ("2025-11-05", None)])
def test_an_ordered_or_open_range_passes(start, end):
    p = params(RANGE, {"start_date": start, "end_date": end})
    assert (p.start_date, p.end_date) == (start and dt.date.fromisoformat(start), end and dt.date.fromisoformat(end))


def test_a_rule_naming_no_parameter_is_an_error():
    with pytest.raises(ParameterError, match="not_before names 'begin'"):
        params({"end_date": Param(dt.date, dt.date(2025, 1, 1), not_before="begin")})
