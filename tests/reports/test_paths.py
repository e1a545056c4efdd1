"""Paths as the published reports show them: relative to the project root, ``~`` for the home
folder, anything else (a shared mount, a URI) unchanged; and free text scrubbed the same way."""
from __future__ import annotations

from pathlib import Path

import pytest

from mbolake.reports.paths import display_path, scrub

ROOT = "/srv/build-7/project"
HOME = "/home/alice"


@pytest.mark.parametrize("path, shown", [
    (f"{ROOT}/ml/artifacts/datasets/ES_MODEL/2026-01-06", "ml/artifacts/datasets/ES_MODEL/2026-01-06"),
    (Path(ROOT) / "runs" / "r1", "runs/r1"),
    (ROOT, "."),
    (f"{ROOT}/", "."),
    (f"file://{ROOT}/mlartifacts/1/abc/artifacts", "mlartifacts/1/abc/artifacts"),
    (f"{ROOT}2/x", f"{ROOT}2/x"),  # a sibling whose name starts the same is outside
    (f"{HOME}/data/raw-dbn/x.dbn.zst", "~/data/raw-dbn/x.dbn.zst"),
    ("/mnt/shared/raw-dbn/x.dbn.zst", "/mnt/shared/raw-dbn/x.dbn.zst"),
    ("raw-dbn/ES/20251110/x.dbn.zst", "raw-dbn/ES/20251110/x.dbn.zst"),  # stored relative already
    ("models:/ES_MODEL_setup_v3/1", "models:/ES_MODEL_setup_v3/1"),
    ("abfss://lake@account.dfs.core.windows.net/ml", "abfss://lake@account.dfs.core.windows.net/ml"),
    (None, ""),
])
def test_display_path(path, shown):
    assert display_path(path, ROOT, home=HOME) == shown


def test_the_project_root_wins_over_the_home_folder_it_is_in():
    assert display_path("/home/alice/project/runs", "/home/alice/project", home=HOME) == "runs"
    assert display_path("/home/alice/other", "/home/alice/project", home=HOME) == "~/other"


def test_a_linked_root_is_found_in_either_form(tmp_path):
    real = tmp_path / "real"
    (real / "ml").mkdir(parents=True)
    (tmp_path / "link").symlink_to(real)
    assert display_path(real / "ml", tmp_path / "link", home=HOME) == "ml"
    assert display_path(tmp_path / "link" / "ml", real, home=HOME) == "ml"
    assert scrub(f"at {real}/ml and {tmp_path / 'link'}/ml", tmp_path / "link", home=HOME) == "at ml and ml"


def test_scrub_replaces_every_form_of_the_root_in_free_text():
    text = (f"snapshot {ROOT}/ml/a: 160 episodes; artifacts file://{ROOT}/mlartifacts/1; store "
            f"sqlite:///{ROOT}/mlruns.db; root {ROOT}. <td>{ROOT}/runs</td> cache {HOME}/.cache, {HOME}")
    assert scrub(text, ROOT, home=HOME) == ("snapshot ml/a: 160 episodes; artifacts mlartifacts/1; store "
                                            "sqlite:///mlruns.db; root .. <td>runs</td> cache ~/.cache, ~")


def test_scrub_leaves_other_paths_alone():
    text = f"{ROOT}2/x {ROOT}.bak /opt{ROOT}/x /mnt/shared/x models:/m/1"
    assert scrub(text, ROOT, home=HOME) == text


def test_scrub_never_touches_the_file_system_root():
    assert scrub("/usr/lib and /x", "/", home="/") == "/usr/lib and /x"
    assert display_path("/usr/lib", "/", home="/") == "/usr/lib"


def test_the_features_headline_and_the_champions_tags_show_the_snapshot_relative_to_the_root():
    from types import SimpleNamespace

    import pandas as pd

    from mbolake.reports import features, sweep

    profile = SimpleNamespace(root=Path(ROOT))
    snapshot = SimpleNamespace(path=Path(ROOT) / "ml/artifacts/datasets/ES_MODEL/2026-01-06", frame=pd.DataFrame(
        {"x": range(1200)}))
    assert features.headline(profile, snapshot) == "snapshot ml/artifacts/datasets/ES_MODEL/2026-01-06: 1,200 episodes"
    assert features.headline(profile, None).startswith("no training snapshot")
    version = SimpleNamespace(tags={"split": "default", "snapshot": str(snapshot.path), "model_uri": "models:/m-1"})
    assert sweep.tags_table(version, ROOT).values.tolist() == [
        ["model_uri", "models:/m-1"], ["snapshot", "ml/artifacts/datasets/ES_MODEL/2026-01-06"], ["split", "default"]]
