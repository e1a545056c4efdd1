"""Run notebooks in order through papermill into ``runs/<run_id>/``.

The console gets one line per notebook (name, time, ok or failed and where) with a progress
bar while it runs, and a final summary. Everything else (the kernels' and Spark's output)
goes to ``runs/<run_id>/logs/``; ``run.json`` records the run, the stages write
``summaries/<stage>.json``. Stops at the first failure, keeping the executed copy of the
failed notebook (with the traceback).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import kernels, run_record
from .config import Profile, ProfileError, load_profile
from .spark import jvm_output_to

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
    # last, so that a check that cannot run does not hold up the model: Silver and Gold of the
    # selection's last session again on the other engine, compared row for row with the lake
    "30_gold/39_engine_parity.ipynb",
    # the real-time leg: the last session through the broker and every streaming job, parity with batch
    "50_realtime/52_rt_replay_leg.ipynb",
    "50_realtime/50_realtime_overview.ipynb",
)
KERNEL_NAME = "mbolake"


class NotebookFailed(RuntimeError):
    def __init__(self, notebook: Path, output: Path, cause: BaseException, where: str = ""):
        super().__init__(f"notebook {notebook} failed{' at ' + where if where else ''}; "
                         f"executed copy with the traceback: {output}\n{cause}")
        self.notebook, self.output, self.where = notebook, output, where


class UnknownParameter(ValueError):
    """A ``-p name=value`` that none of the notebooks declares (a typo must not run on defaults)."""


@dataclass
class NotebookRun:
    notebook: Path
    output: Path
    seconds: float
    log: Path | None = None
    status: str = "ok"
    error: str = ""
    extra: dict = field(default_factory=dict)


class RunIdInUse(ValueError):
    """An explicit ``--run-id`` whose folder exists (or is one of the runs folder's own)."""


# Folders of runs/ that are not runs: the stream jobs', the feeds' and the served models' state.
RESERVED_RUN_IDS = frozenset({"streams", "feeds", "serve", "index.html"})
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def new_run_id() -> str:
    """``20261208T031500Z-3fa9c2``: the UTC second (runs list in start order) and 24 random bits, so
    runs started in the same second (jobs of a scheduler, or two users) get folders of their own."""
    return f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def claim_run_dir(runs_root: str | Path, run_id: str | None) -> tuple[str, Path]:
    """Create ``runs/<run_id>/`` for this run alone (``mkdir`` fails when the folder exists, also when
    another process made it a moment ago). Without ``run_id`` a new one is drawn until one is free; an
    explicit one that is taken, reserved or not a plain folder name raises ``RunIdInUse``."""
    runs_root = Path(runs_root)
    runs_root.mkdir(parents=True, exist_ok=True)
    if run_id is not None:
        if not _RUN_ID.fullmatch(run_id):
            raise RunIdInUse(f"run id {run_id!r} is not a folder name: use letters, digits, '.', '_' and '-' "
                             f"(at most 100, starting with a letter or digit)")
        if run_id in RESERVED_RUN_IDS:
            raise RunIdInUse(f"run id {run_id!r} is reserved ({runs_root / run_id} holds "
                             f"{'the runs index' if run_id == 'index.html' else 'real-time state'}); choose another")
        try:
            (runs_root / run_id).mkdir()
        except FileExistsError:
            raise RunIdInUse(f"run id {run_id!r} is already in use ({runs_root / run_id} exists); choose another "
                             f"--run-id or leave it out for a new one") from None
        return run_id, runs_root / run_id
    for _ in range(100):
        run_id = new_run_id()
        try:
            (runs_root / run_id).mkdir()
            return run_id, runs_root / run_id
        except FileExistsError:
            continue
    raise RuntimeError(f"no free run id under {runs_root} after 100 draws")


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


def declared_parameters(notebook: Path) -> set[str]:
    """The names assigned in the notebook's cell tagged ``parameters``."""
    import papermill

    return set(papermill.inspect_notebook(str(notebook)))


def check_parameters(parameters: dict, notebooks: list[Path]) -> None:
    known = set().union(*(declared_parameters(nb) for nb in notebooks)) if notebooks else set()
    unknown = sorted(set(parameters) - known - {"profile"})
    if unknown:
        raise UnknownParameter(f"unknown parameter {unknown[0]!r}: none of the {len(notebooks)} notebook(s) declares it "
                               f"(known: {', '.join(sorted(known))})")


def notebook_label(notebook: Path) -> str:
    return f"{notebook.parent.name}/{notebook.stem}"


def failure_location(exc: BaseException) -> str:
    """``cell [n]: Error: message`` from papermill's error, else the exception itself."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename is None:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    cell = getattr(exc, "exec_count", None)
    message = str(evalue).strip().splitlines()[0] if evalue else ""
    return f"cell [{cell}]: {ename}: {message}"[:300]


@contextlib.contextmanager
def environment(**values: str):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def execute_one(notebook: Path, output: Path, log_path: Path, params: dict, console, progress: bool,
                profile: Profile) -> None:
    """papermill with this process's and the kernel's output in ``log_path``; the progress bar
    (cells done) on ``console``. A kernel that does not reply within the profile's start timeout
    raises ``KernelStartTimeout`` naming the setting."""
    bar = {"file": console, "leave": False, "desc": notebook_label(notebook), "dynamic_ncols": True} if progress else False
    with environment(MBOLAKE_SPARK_LOG=str(log_path), PYDEVD_DISABLE_FILE_VALIDATION="1"), jvm_output_to(log_path):
        kernels.execute_notebook(str(notebook), str(output), params, KERNEL_NAME, str(notebook.parent), profile,
                                 progress_bar=bar, log_output=True, stdout_file=sys.stdout, stderr_file=sys.stderr)


def run_notebooks(
    names: list[str] | tuple[str, ...],
    parameters: dict | None = None,
    run_id: str | None = None,
    profile: Profile | None = None,
    log=print,
    progress: bool = False,
) -> list[NotebookRun]:
    """Execute the notebooks in order into ``runs/<run_id>/`` (a new folder: an explicit ``run_id``
    already in use raises ``RunIdInUse`` before any work); ``run.json`` records each one.

    Raises ``NotebookFailed`` at the first failure. Parameters a notebook does not declare are
    ignored by it (papermill's behaviour); ``main_run`` refuses names that no notebook declares."""
    profile = profile or load_profile()
    notebooks = resolve_notebooks(names, profile.root / "notebooks")
    kernels.start_timeout(profile)  # a bad setting fails before any work
    run_id, out_dir = claim_run_dir(profile.runs_root, run_id)
    return _run_in(out_dir, notebooks, {"profile": profile.name, **(parameters or {})}, profile, log, progress)


def _run_in(out_dir: Path, notebooks: list[Path], params: dict, profile: Profile, log,
            progress: bool) -> list[NotebookRun]:
    """The notebooks in order in the run folder ``out_dir`` (claimed by the caller)."""
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    record = {"run_id": out_dir.name, "status": "running", "started_at": run_record.now_iso(), "finished_at": None,
              "profile": profile.name, "parameters": params, "planned": [notebook_label(n) for n in notebooks],
              "notebooks": [], "failed": None}
    run_record.write_json(out_dir / "run.json", record)
    console = os.fdopen(os.dup(2), "w", buffering=1)
    done = []
    try:
        with environment(**{run_record.RUN_DIR_ENV: str(out_dir)}):
            for notebook in notebooks:
                done.append(_run_one(notebook, out_dir, params, record, console, progress, log, profile))
    finally:
        record["finished_at"] = run_record.now_iso()
        if record["status"] == "running":
            record["status"] = "ok"
        run_record.write_json(out_dir / "run.json", record)
        console.close()
    return done


def _run_one(notebook: Path, out_dir: Path, params: dict, record: dict, console, progress: bool, log,
             profile: Profile) -> NotebookRun:
    output = out_dir / f"{notebook.parent.name}__{notebook.name}"
    log_path = out_dir / "logs" / f"{notebook.parent.name}__{notebook.stem}.log"
    t0 = time.perf_counter()
    entry = {"notebook": notebook_label(notebook), "output": output.name, "log": f"logs/{log_path.name}"}
    before = run_record.summaries_state(out_dir)
    try:
        execute_one(notebook, output, log_path, params, console, progress, profile)
    except Exception as exc:
        where = failure_location(exc)
        with open(log_path, "a") as log_file:
            log_file.write(f"\n--- {notebook_label(notebook)} failed at {where}\n{exc}\n")
        digests = _stage_digests(out_dir, before)
        entry.update(status="failed", seconds=round(time.perf_counter() - t0, 1), error=where, summaries=digests)
        record["notebooks"].append(entry)
        record.update(status="failed", failed=entry)
        log(notebook_line("FAILED", notebook, entry["seconds"], where, digests))
        raise NotebookFailed(notebook, output, exc, where) from exc
    run = NotebookRun(notebook, output, time.perf_counter() - t0, log_path)
    digests = _stage_digests(out_dir, before)
    entry.update(status="ok", seconds=round(run.seconds, 1), summaries=digests)
    run.extra["summaries"] = digests
    record["notebooks"].append(entry)
    run_record.write_json(out_dir / "run.json", record)
    log(notebook_line("ok", notebook, run.seconds, "", digests))
    return run


def _stage_digests(out_dir: Path, before: dict) -> list[dict]:
    """What the stages run by this notebook wrote to ``summaries/``, digested (text included)."""
    digests = [run_record.stage_digest(s) for s in run_record.summaries_written(out_dir, before)]
    return [{**d, "text": run_record.digest_text(d)} for d in digests]


WRAP_AT = 150  # a longer line of several stages puts their counts on a second, indented line


def notebook_line(status: str, notebook: Path, seconds: float, where: str, digests: list[dict]) -> str:
    """``  ok     10_bronze/10_bronze_ingest   41.2 s  BronzeProcessDBN: 8 file(s) ingested, ...``"""
    head = f"  {status:6s} {notebook_label(notebook):40s} {seconds:7.1f} s"
    tail = "  ".join(filter(None, [where, " | ".join(d["text"] for d in digests)]))
    if not tail:
        return head
    if len(head) + 2 + len(tail) <= WRAP_AT or len(digests) < 2:
        return f"{head}  {tail}"
    first = f"{head}  {where}" if where else head
    return f"{first}\n{' ' * 9}" + " | ".join(d["text"] for d in digests)


def console_line(text: str) -> None:
    """A line on the console that does not tear a progress bar."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stdout)


def main_run(names, parameters, run_id, profile_name, after=None) -> int:
    """``mbolake run`` / ``demo``: exit 0, 1 when a notebook failed, 2 for a bad profile,
    notebook name or parameter (nothing ran). ``after(profile, run_id)`` runs either way
    once notebooks have run (``mbolake`` renders the reports there)."""
    try:
        profile = load_profile(profile_name)
        notebooks = resolve_notebooks(names, profile.root / "notebooks")
        check_parameters({"profile": profile.name, **parameters}, notebooks)
        kernels.start_timeout(profile)  # a bad setting fails before any work
        run_id, out_dir = claim_run_dir(profile.runs_root, run_id)
    except (ProfileError, FileNotFoundError, UnknownParameter, RunIdInUse) as exc:
        print(f"mbolake: {exc}", file=sys.stderr)
        return 2
    console_line(f"run {run_id}: {len(notebooks)} notebook(s) -> {out_dir}/ (logs in {out_dir}/logs/)")
    t0 = time.perf_counter()
    failed = None
    try:
        runs = _run_in(out_dir, notebooks, {"profile": profile.name, **parameters}, profile,
                       log=console_line, progress=sys.stderr.isatty())
    except NotebookFailed as exc:
        failed, runs = exc, []
    if after is not None:
        after(profile, run_id)
    record = run_record.read_run(out_dir) or {}
    ok = sum(1 for n in record.get("notebooks", []) if n.get("status") == "ok")
    elapsed = time.perf_counter() - t0
    if failed is not None:
        console_line(f"FAILED after {ok} notebook(s) ok in {elapsed:.0f} s: {notebook_label(failed.notebook)} "
                     f"{failed.where}\n  executed copy: {failed.output}\n  record: {out_dir / 'run.json'}")
        return 1
    console_line(f"done: {ok} notebook(s) ok in {elapsed:.0f} s; record {out_dir / 'run.json'}")
    if any(r.notebook.name == "43_serve.ipynb" for r in runs):
        console_line(champion_report(profile))
    return 0


def champion_report(profile: Profile, model_name: str = "ES_MODEL_setup_v3") -> str:
    """The served champion: its MLflow run and the test metrics it was registered with."""
    import mlflow

    mlflow.set_tracking_uri(profile.mlflow_tracking_uri)
    version = mlflow.MlflowClient().get_model_version_by_alias(model_name, "champion")
    metrics = ", ".join(f"{k[5:]}={float(v):.3f}" for k, v in sorted(version.tags.items()) if k.startswith("test_"))
    return (f"champion {model_name} v{version.version} (MLflow run {version.run_id}) served and smoke-tested; "
            f"test metrics: {metrics}")
