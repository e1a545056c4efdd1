"""Run notebooks in order through papermill into ``runs/<run_id>/``.

Stops at the first failure and says which notebook failed and where its executed copy
is (papermill writes the copy, with the failing cell's traceback, before raising).
"""
from __future__ import annotations

import datetime as dt
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .config import Profile, load_profile

# Every stage that exists so far, in order. The Databento download needs an API key and
# is run on its own; the sample generator stands in for it on the embedded default.
DEMO_PIPELINE = (
    "00_setup/00_environment_check.ipynb",
    "00_setup/02_generate_sample.ipynb",
    "10_bronze/10_bronze_ingest.ipynb",
    "20_silver/20_silver_orderbook.ipynb",
    "20_silver/21_silver_normalize.ipynb",
    "20_silver/22_silver_levels_bars.ipynb",
    "20_silver/23_silver_approach.ipynb",
    "30_gold/30_gold_setup_vectors.ipynb",
    "40_ml/41_split.ipynb",
    "40_ml/42_sweep.ipynb",
    "40_ml/43_serve.ipynb",
)
KERNEL_NAME = "mbolake"


class NotebookFailed(RuntimeError):
    def __init__(self, notebook: Path, output: Path, cause: BaseException):
        super().__init__(f"notebook {notebook} failed; executed copy with the traceback: {output}\n{cause}")
        self.notebook, self.output = notebook, output


@dataclass
class NotebookRun:
    notebook: Path
    output: Path
    seconds: float


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def resolve_notebooks(names: list[str] | tuple[str, ...], notebooks_root: Path) -> list[Path]:
    """Notebook paths (relative to ``notebooks/``) or stage folders, expanded in name order."""
    found = []
    for name in names:
        path = notebooks_root / name
        if path.is_dir():
            found += sorted(path.glob("*.ipynb"))
        elif path.suffix != ".ipynb" and path.with_suffix(".ipynb").exists():
            found.append(path.with_suffix(".ipynb"))
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(f"no notebook or stage folder {name!r} under {notebooks_root}")
    return found


def run_notebooks(
    names: list[str] | tuple[str, ...],
    parameters: dict | None = None,
    run_id: str | None = None,
    profile: Profile | None = None,
    log=print,
) -> list[NotebookRun]:
    import papermill

    profile = profile or load_profile()
    run_id = run_id or new_run_id()
    notebooks = resolve_notebooks(names, profile.root / "notebooks")
    out_dir = Path(profile.runs_root) / run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile.name, **(parameters or {})}
    done = []
    for notebook in notebooks:
        output = out_dir / f"{notebook.parent.name}__{notebook.name}"
        log(f"[{run_id}] {notebook.relative_to(profile.root)} -> {output}")
        t0 = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(notebook),
                str(output),
                parameters=params,
                kernel_name=KERNEL_NAME,
                cwd=str(notebook.parent),
                progress_bar=False,
                log_output=False,
            )
        except Exception as exc:
            raise NotebookFailed(notebook, output, exc) from exc
        done.append(NotebookRun(notebook, output, time.perf_counter() - t0))
        log(f"[{run_id}]   ok in {done[-1].seconds:.1f} s")
    return done


def main_run(names, parameters, run_id, profile_name) -> int:
    try:
        runs = run_notebooks(names, parameters, run_id, load_profile(profile_name))
    except NotebookFailed as exc:
        print(f"FAILED: {exc.notebook}\n  executed copy: {exc.output}", file=sys.stderr)
        print(str(exc.__cause__)[-3000:], file=sys.stderr)
        return 1
    print(f"{len(runs)} notebook(s) ran; outputs in {runs[0].output.parent if runs else '-'}")
    if any(r.notebook.name == "43_serve.ipynb" for r in runs):
        print(champion_report(load_profile(profile_name)))
    return 0


def champion_report(profile: Profile, model_name: str = "ES_MODEL_setup_v2") -> str:
    """The served champion: its MLflow run and the test metrics it was registered with."""
    import mlflow

    mlflow.set_tracking_uri(profile.mlflow_tracking_uri)
    version = mlflow.MlflowClient().get_model_version_by_alias(model_name, "champion")
    metrics = ", ".join(f"{k[5:]}={float(v):.3f}" for k, v in sorted(version.tags.items()) if k.startswith("test_"))
    return (f"champion {model_name} v{version.version} (MLflow run {version.run_id}) served and smoke-tested; "
            f"test metrics: {metrics}")
