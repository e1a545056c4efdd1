"""Serve a registered model with a real ``mlflow models serve`` process on 127.0.0.1.

:func:`serving` starts the server (``--env-manager local``), waits for ``/ping`` and always
stops it (its own process group) on exit. :func:`serving_round_trip` scores rows over
HTTP and checks the answers equal in-process predictions of the same model.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..runtime.atomic_files import write_json_atomic
from .inference_client import InferenceClient


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class LocalServer:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def _mlflow_cli() -> list[str]:
    exe = Path(sys.executable).with_name("mlflow")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mlflow"]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover
        return True


def _stop(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """Stop the server and every process of its own group (uvicorn), SIGKILL after ``grace``."""
    pgid = proc.pid  # start_new_session=True: the server leads its own process group
    if _group_alive(pgid):
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        proc.poll()
        if proc.returncode is not None and not _group_alive(pgid):
            return
        time.sleep(0.1)
    if _group_alive(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=grace)


@contextmanager
def serving(model_uri: str, tracking_uri: str, host: str = "127.0.0.1", port: int | None = None,
            startup_timeout: float = 120.0, log_dir: str | Path | None = None, info_path: str | Path | None = None):
    """Yield a :class:`LocalServer` for ``model_uri`` (e.g. ``models:/ES_MODEL_setup_v3@champion``).

    With ``info_path`` the alias is pinned to its version first (the server keeps serving that
    version when the alias moves) and, while the server answers, ``info_path`` holds its url,
    model name and version (:func:`read_serve_info`; rt inference stamps its scores with it)."""
    port = port or free_port(host)
    info = None
    if info_path is not None:
        model_uri, name, version = pin_alias(model_uri, tracking_uri)
        info = {"model_name": name, "model_version": version, "model_uri": model_uri}
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_REGISTRY_URI": tracking_uri}
    # The server execs ``uvicorn`` by name: put this interpreter's bin folder first on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="mlflow-serve-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"serve-{port}.log"
    cmd = [*_mlflow_cli(), "models", "serve", "-m", model_uri, "--host", host, "--port", str(port),
           "--env-manager", "local", "--workers", "1"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = LocalServer(url=f"http://{host}:{port}", process=proc, log_path=log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow models serve exited with {proc.returncode}:\n{server.log()[-3000:]}")
            try:
                with urllib.request.urlopen(server.url + "/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"mlflow models serve did not answer /ping within {startup_timeout}s:\n"
                                   f"{server.log()[-3000:]}")
            time.sleep(0.5)
        if info is not None:
            _write_info(Path(info_path), info | {"url": server.url, "pid": proc.pid})
        yield server
    finally:
        if info is not None:
            _remove_info(Path(info_path), proc.pid)
        _stop(proc)


def pin_alias(model_uri: str, tracking_uri: str) -> tuple[str, str, str]:
    """``models:/<name>@<alias>`` or ``models:/<name>/<version>`` -> (``models:/<name>/<version>``, name, version)."""
    from mlflow import MlflowClient

    if not model_uri.startswith("models:/"):
        raise ValueError(f"cannot tell the registered version of {model_uri!r}: serve a models:/<name>@<alias> URI")
    ref = model_uri[len("models:/"):]
    if "@" in ref:
        name, alias = ref.split("@", 1)
        version = MlflowClient(tracking_uri, registry_uri=tracking_uri).get_model_version_by_alias(name, alias).version
    else:
        name, version = ref.rsplit("/", 1)
    return f"models:/{name}/{version}", name, str(version)


def serve_info_path(profile, model_name: str) -> Path:
    """Where a locally served model announces itself: ``runs/serve/<model_name>.json``."""
    return Path(profile.runs_root) / "serve" / f"{model_name}.json"


def read_serve_info(path: str | Path) -> dict | None:
    """The serve info of a running server (url, model_name, model_version, model_uri, pid), or None."""
    try:
        info = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return info if _group_alive(int(info.get("pid", -1))) else None


def _write_info(path: Path, info: dict) -> None:
    write_json_atomic(path, info)  # rt inference reads it while servers come and go


def _remove_info(path: Path, pid: int) -> None:
    info = read_serve_info(path) if path.exists() else None
    if info is None or int(info.get("pid", -1)) == pid:
        path.unlink(missing_ok=True)


@dataclass
class RoundTrip:
    url: str
    rows: int
    max_abs_diff: float
    equal: bool
    predictions_http: pd.DataFrame = field(repr=False)
    predictions_local: pd.DataFrame = field(repr=False)
    seconds_startup: float = 0.0
    seconds_scoring: float = 0.0


def _similar_key(cell) -> list:
    return [(d["episode_id"], round(float(d["distance"]), 9)) for d in (cell or [])]


def compare_predictions(http: pd.DataFrame, local: pd.DataFrame, atol: float = 1e-9) -> tuple[bool, float]:
    prob_cols = [c for c in local.columns if c.startswith("p_")]
    if list(http.columns) != list(local.columns) or len(http) != len(local):
        return False, float("inf")
    diff = float(np.max(np.abs(http[prob_cols].to_numpy(float) - local[prob_cols].to_numpy(float)))) if len(local) else 0.0
    same = diff <= atol and list(http["predicted"]) == list(local["predicted"])
    if "similar_setups" in local:
        same = same and [_similar_key(c) for c in http["similar_setups"]] == \
            [_similar_key(c) for c in local["similar_setups"]]
    return bool(same), diff


def serving_round_trip(model_uri: str, tracking_uri: str, frame: pd.DataFrame, k_similar: int = 5,
                       atol: float = 1e-9, **serve_kwargs) -> RoundTrip:
    """Serve ``model_uri``, score ``frame`` over HTTP and in-process, compare, stop the server."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    params = {"k_similar": k_similar} if k_similar else None
    local = mlflow.pyfunc.load_model(model_uri).predict(frame, params=params)
    t0 = time.perf_counter()
    with serving(model_uri, tracking_uri, **serve_kwargs) as server:
        t1 = time.perf_counter()
        http = InferenceClient(server.url, kind="mlflow_local").predict(frame, params=params)
        t2 = time.perf_counter()
    equal, diff = compare_predictions(http, local.reset_index(drop=True), atol=atol)
    return RoundTrip(url=server.url, rows=len(frame), max_abs_diff=diff, equal=equal, predictions_http=http,
                     predictions_local=local, seconds_startup=t1 - t0, seconds_scoring=t2 - t1)


def serve_champion(profile, model_id: str = "ES_MODEL", feature_set: str = "setup_v3", port: int | None = None,
                   on_ready=print) -> None:
    """Serve ``<model_id>_<feature_set>@champion`` (pinned to its version) until SIGTERM or Ctrl-C, announced in
    ``runs/serve/<name>.json`` for rt inference; the server and the announcement go away on exit."""
    from .registry import champion_uri, registered_model_name

    name = registered_model_name(model_id, feature_set)
    info_path = serve_info_path(profile, name)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwinds through serving()'s clean-up
    host = str(profile.settings.get("endpoint", {}).get("host", "127.0.0.1"))
    with serving(champion_uri(name), profile.mlflow_tracking_uri, host=host, port=port, info_path=info_path,
                 log_dir=Path(profile.runs_root) / "serve") as server:
        info = json.loads(info_path.read_text())
        on_ready(f"{name} v{info['model_version']} served at {server.url} (announced in {info_path})")
        while server.process.poll() is None:
            time.sleep(1.0)
        raise RuntimeError(f"mlflow models serve exited with {server.process.returncode}:\n{server.log()[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    """``python -m mbolake.ml.serve [--profile P] [--model-id ES_MODEL] [--port N]``: the champion in the foreground."""
    import argparse

    from ..runtime.config import load_profile

    parser = argparse.ArgumentParser(prog="python -m mbolake.ml.serve")
    parser.add_argument("--profile", default=None)
    parser.add_argument("--model-id", default="ES_MODEL")
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        serve_champion(load_profile(args.profile), args.model_id, port=args.port,
                       on_ready=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
