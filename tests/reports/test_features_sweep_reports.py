"""The features and sweep reports on a generated training snapshot with a real 3-trial sweep in a
local MLflow store: every section and figure rendered, no error cells, drawn in headless Chromium."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from mbolake.reports import render
from mbolake.runtime.config import load_profile

from tests.helpers import make_project
from tests.reports.conftest import machine_paths, open_page
from tests.reports.small_lake import write_run

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """A project of its own (no lake: the snapshot is generated), so the validation tests see none of it."""
    from mbolake.ml import registry, split, sweep, tracking
    from mbolake.sample.ml_snapshot import write_synthetic_snapshot

    root = make_project(tmp_path_factory.mktemp("ml_project"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MBOLAKE_HOME", str(root))
        yield build_and_render(root, registry, split, sweep, tracking, write_synthetic_snapshot)


def build_and_render(root, registry, split, sweep, tracking, write_synthetic_snapshot):
    profile = load_profile("local")
    snapshot = write_synthetic_snapshot(profile.ml_artifacts_root, "ES_MODEL", dt.date(2026, 1, 6), n_sessions=8,
                                        episodes_per_session=20)
    tracking.setup_mlflow(profile)
    split.split_snapshot(snapshot, "default", fractions=(0.6, 0.2, 0.2), overwrite=True)
    # no matplotlib plots per trial: the report draws its own figures
    registry.register_best(sweep.run_sweep(snapshot / "splits" / "default", max_evals=3, seed=3, plots=False))
    write_run(root, "ml-run")
    results = render.render_reports(render.REPORTS, profile, "ml-run", log=lambda _: None)
    return {r.name: r for r in results}


def text_outputs(page: str) -> str:
    return re.sub(r"<[^>]+>", " ", page)


def test_features_report_sections_and_figures(rendered):
    result = rendered["features"]
    assert result.status == "ok", result.error
    page = result.html.read_text()
    for section in ("Episodes and label balance per session", "NaN and inf per feature family",
                    "Distributions per family, level type and direction", "Drift across sessions"):
        assert section in page
    # label balance + six families + drift
    assert page.count('class="plotly-graph-div"') == 8
    assert "160 episodes" in text_outputs(page)
    assert 'data-mime-type="application/vnd.jupyter.stderr"' not in page and "Traceback" not in text_outputs(page)


def test_sweep_report_sections_and_figures(rendered):
    result = rendered["sweep"]
    assert result.status == "ok", result.error
    page = result.html.read_text()
    text = text_outputs(page)
    assert re.search(r"champion ES_MODEL_setup_v\d v1", text)
    # loss over time, parameters vs loss, confusion matrix, calibration
    assert page.count('class="plotly-graph-div"') == 4
    for column in ("validation", "majority class (validation)", "label prior (test)"):
        assert column in text
    assert "log_loss" in text and "macro_f1" in text and "sweep_run_id" in text and "data_version" in text


def test_no_report_shows_an_absolute_path_of_the_project_root(rendered):
    """Reports are published: the features report's snapshot, the sweep report's ``snapshot``
    tag and the validation report's lineage show paths relative to the project root."""
    root = load_profile("local").root
    pages = {name: result.html for name, result in rendered.items()}
    pages["index"] = Path(load_profile("local").runs_root) / "index.html"
    assert set(pages) == {*render.REPORTS, "index"} and all(r.status == "ok" for r in rendered.values())
    # the executed notebooks beside the pages (papermill's input and output paths, the cells' outputs)
    pages |= {f"{name}.ipynb": result.html.with_suffix(".ipynb") for name, result in rendered.items()}
    assert {name: machine_paths(path.read_text(), root) for name, path in pages.items()} == {n: [] for n in pages}
    snapshot = "ml/artifacts/datasets/ES_MODEL/2026-01-06"
    assert f"snapshot {snapshot}: 160 episodes" in text_outputs(pages["features"].read_text())
    assert re.search(r"<td>snapshot</td>\s*<td>ml/", pages["sweep"].read_text())  # the champion's tag
    validation = text_outputs(pages["validation"].read_text())
    assert snapshot in validation and "snapshot ml/artifacts/datasets/" in validation  # lineage: the snapshot, the model


@pytest.mark.browser
@pytest.mark.parametrize("name, figures", [("features", 8), ("sweep", 4)])
def test_chromium_draws_the_figures(rendered, browser, tmp_path, name, figures):
    divs, drawn, errors, requests = open_page(browser, rendered[name].html, tmp_path / f"{name}.png")
    assert (divs, drawn) == (figures, figures)
    assert errors == [] and requests == []
