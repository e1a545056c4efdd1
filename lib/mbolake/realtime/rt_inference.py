"""rt inference: ``gold.setup_vectors_stream`` -> the champion -> ``gold.inference_scores_stream`` + ``inference_scores``.

A Structured Streaming query over the Delta table of setup vectors (trigger every
``trigger_seconds``, checkpoint ``lake/checkpoints/rt_inference``). Each micro-batch
(``foreachBatch``) groups its vectors by ``(model_id, feature_set)``, builds the model input the
way batch serving does (:func:`mbolake.ml.snapshot.feature_matrix` over the feature set's
layout) and scores it through :class:`~mbolake.ml.inference_client.InferenceClient`.

An endpoint that is down, not served yet or overloaded delays the scores, it never drops them:
the call is retried with exponential backoff; after ``max_wait_seconds`` the micro-batch raises,
the query fails and a restart scores the same vectors again from the checkpoint. An answer the
endpoint refuses (HTTP 4xx: the input does not fit the model) fails at once.

Every score carries the served ``model_name`` / ``model_version`` and the vector's
``feature_hash``. The scores are appended (delta-rs) with a Delta application transaction
(txnAppId = ``rt_inference:<query id>``, txnVersion = batch id): a micro-batch re-run after a
crash is not written twice; its scores, read back from the table, are published again rather
than scored again (and logged as a re-run). The query's id, not the checkpoint's path: a
checkpoint deleted and recreated at the same path is a new query whose batch ids start from 0
again, and must score its vectors rather than take them for a re-run. Then they are published as JSON to ``inference_scores`` (key
``episode_id``; at least once: a consumer keeps the last message per episode and model version).

The setup vectors stream must only ever be appended to (an append or an insert-only MERGE):
the Delta streaming source fails on a commit that rewrites files, which is what we want.
"""
from __future__ import annotations

import http.client
import json
import logging
import os
import threading
import time
import urllib.error
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from ..ml.inference_client import InferenceClient, InferenceError
from ..ml.registry import registered_model_name
from ..ml.snapshot import feature_matrix
from ..runtime.atomic_files import write_json_atomic
from ..schemas import INFERENCE_SCORES_STREAM, SETUP_VECTORS_STREAM, Table
from .bus import BusSettings, check_bus
from .producer import QueryPublisher, close_when_done
from .rt_bronze import QueryId, check_checkpoint, lake_table_path

QUERY = "rt_inference"
log = logging.getLogger(__name__)
SCORE_COLUMNS = [f.name for f in INFERENCE_SCORES_STREAM.schema]
CLASS_COLUMNS = {"BREAK": "p_break", "REJECT": "p_reject", "CHOP": "p_chop"}
# HTTP answers that mean "not now" rather than "never" (timeouts, throttling, the server's own trouble)
RETRY_CODES = {408, 425, 429}


@dataclass(frozen=True)
class RtInferenceConfig:
    lake_root: str
    checkpoint: str
    topic: str = "inference_scores"
    trigger_seconds: float = 5.0
    max_wait_seconds: float = 600.0  # the endpoint down longer than this: the query fails
    first_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    max_files_per_trigger: int = 1000

    def table_path(self, table: Table) -> str:
        return lake_table_path(self.lake_root, table)

    def check(self) -> None:
        """A bad parameter fails before the query starts, naming it."""
        for name in ("trigger_seconds", "max_wait_seconds", "first_backoff_seconds", "max_backoff_seconds"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"rt_inference: {name} must be a number > 0, got {value!r}")
        if not isinstance(self.max_files_per_trigger, int) or self.max_files_per_trigger < 1:
            raise ValueError(f"rt_inference: max_files_per_trigger must be an integer >= 1, got {self.max_files_per_trigger!r}")
        if not self.topic:
            raise ValueError("rt_inference: topic is empty")


@dataclass(frozen=True)
class Endpoint:
    """Where a model is served and which registered version answers there."""
    client: InferenceClient
    model_name: str
    model_version: str


# (model_id, feature_set) -> the endpoint serving that model now, or None when none is known yet
Resolver = Callable[[str, str], "Endpoint | None"]


class EndpointDown(RuntimeError):
    """The endpoint did not answer within ``max_wait_seconds``: the micro-batch (and the query) fails."""


class StopRequested(RuntimeError):
    """The job is stopping while a micro-batch waits for its endpoint: nothing was written, a restart scores it."""


_stopping = threading.Event()


def request_stop() -> None:
    """Cut short any endpoint wait of this process (the job's SIGTERM): the waiting micro-batch fails unwritten."""
    _stopping.set()


class StopCutsWaits:
    """The query, whose ``stop()`` first cuts short an endpoint wait (else ``stop()`` waits for the retries)."""

    def __init__(self, query):
        self._query = query

    def __getattr__(self, name):
        return getattr(self._query, name)

    def stop(self) -> None:
        request_stop()
        self._query.stop()


def _wait(seconds: float) -> None:
    if _stopping.wait(seconds):
        raise StopRequested("rt_inference is stopping: the micro-batch waiting for its endpoint is left to the restart")


def model_layout(feature_set: str) -> list[str]:
    from ..features.setup_vector import FEATURE_SET, SETUP_V3_LAYOUT

    if feature_set != FEATURE_SET:
        raise ValueError(f"setup vectors of feature_set {feature_set!r} cannot be scored: the served models take "
                         f"{FEATURE_SET!r}")
    return list(SETUP_V3_LAYOUT)


def model_input(vectors: pd.DataFrame, feature_set: str) -> pd.DataFrame:
    """The model's input frame, as batch serving builds it (notebook 43): one float64 column per layout name."""
    return feature_matrix(vectors.reset_index(drop=True), model_layout(feature_set))


class EndpointUnavailable(RuntimeError):
    """No endpoint is known for a model yet (retried like a refused connection)."""


def _retryable(exc: Exception) -> bool:
    cause = exc.__cause__ if isinstance(exc, InferenceError) else exc
    if isinstance(cause, urllib.error.HTTPError):
        return cause.code in RETRY_CODES or cause.code >= 500
    # refused, reset, timed out, cut short, no DNS, not served (yet)
    return isinstance(cause, (OSError, http.client.HTTPException, EndpointUnavailable))


def _resolve(resolve: Resolver, model_id: str, feature_set: str) -> Endpoint:
    try:
        endpoint = resolve(model_id, feature_set)
    except Exception as exc:  # noqa: BLE001 -- a registry or info file not readable now is a wait, like a down server
        raise EndpointUnavailable(f"the endpoint of {model_id} cannot be resolved now: {exc}") from exc
    if endpoint is None:
        raise EndpointUnavailable(f"no endpoint serves {registered_model_name(model_id, feature_set)} "
                                  "(no serve info file, endpoint.url or MBOLAKE_ENDPOINT_URL)")
    return endpoint


def score_group(vectors: pd.DataFrame, model_id: str, feature_set: str, resolve: Resolver,
                config: RtInferenceConfig, sleep=_wait) -> pd.DataFrame:
    """Score one model's vectors, retrying with backoff while its endpoint is down; the score rows
    (without the stream bookkeeping columns)."""
    frame = model_input(vectors, feature_set)
    started, delay, attempts = time.monotonic(), config.first_backoff_seconds, 0
    while True:
        attempts += 1
        endpoint = None
        try:
            endpoint = _resolve(resolve, model_id, feature_set)
            answer = endpoint.client.predict(frame)
            break
        except Exception as exc:  # noqa: BLE001 -- sorted into retry / fail just below
            if not _retryable(exc):
                raise
            waited = time.monotonic() - started
            where = endpoint.client.scoring_url if endpoint else "no endpoint"
            if waited + delay > config.max_wait_seconds:
                raise EndpointDown(f"rt_inference: {model_id} ({where}) did not answer within "
                                   f"{config.max_wait_seconds:g} s ({attempts} attempts): {exc}") from exc
            log.warning("rt_inference: %d vector(s) of %s wait for %s (attempt %d, retry in %.1f s): %s",
                        len(frame), model_id, where, attempts, delay, exc)
            sleep(delay)
            delay = min(delay * 2, config.max_backoff_seconds)
    return score_rows(vectors, answer, endpoint, attempts)


def score_rows(vectors: pd.DataFrame, answer: pd.DataFrame, endpoint: Endpoint, attempts: int) -> pd.DataFrame:
    if len(answer) != len(vectors):
        raise InferenceError(f"{endpoint.client.scoring_url} answered {len(answer)} rows for {len(vectors)} vectors")
    unknown = [c for c in answer.columns if c.startswith("p_") and c[2:] not in CLASS_COLUMNS]
    if unknown or "predicted" not in answer:
        raise InferenceError(f"{endpoint.model_name} v{endpoint.model_version} answered columns "
                             f"{list(answer.columns)}: expected predicted and p_<class> of {sorted(CLASS_COLUMNS)}")
    out = vectors[["episode_id", "model_id", "contract_id", "session_date", "vector_time", "feature_hash"]]
    out = out.reset_index(drop=True).copy()
    out["model_name"] = endpoint.model_name
    out["model_version"] = str(endpoint.model_version)
    out["predicted"] = answer["predicted"].astype(str).to_numpy()
    for cls, column in CLASS_COLUMNS.items():
        out[column] = answer[f"p_{cls}"].astype("float64").to_numpy() if f"p_{cls}" in answer else float("nan")
    out["scored_time"] = time.time_ns()
    out["attempts"] = attempts
    return out


# -- where the champion is served --------------------------------------------------------------


def profile_resolver(profile) -> Resolver:
    """The profile's endpoint for a model: ``endpoint.url`` / ``MBOLAKE_ENDPOINT_URL`` (Azure ML or a server
    started elsewhere; version from ``endpoint.model_version`` / ``MBOLAKE_ENDPOINT_MODEL_VERSION``, else the
    registry's champion), else the serve info file of a local ``mlflow models serve``
    (:func:`mbolake.ml.serve.serving` with ``info_path``), else None (not served yet)."""
    from ..ml import serve

    settings = dict(profile.settings.get("endpoint", {}))

    def resolve(model_id: str, feature_set: str) -> Endpoint | None:
        name = registered_model_name(model_id, feature_set)
        url = settings.get("url") or os.environ.get("MBOLAKE_ENDPOINT_URL")
        if url:
            version = (settings.get("model_version") or os.environ.get("MBOLAKE_ENDPOINT_MODEL_VERSION")
                       or champion_version(profile.mlflow_tracking_uri, name))
            kind = settings.get("kind", "mlflow_local")
            return Endpoint(InferenceClient(url=url, kind=kind, deployment=settings.get("deployment")), name,
                            str(version))
        info = serve.read_serve_info(serve.serve_info_path(profile, name))
        if info is None:
            return None
        return Endpoint(InferenceClient(url=info["url"], kind="mlflow_local"), info["model_name"],
                        str(info["model_version"]))

    return resolve


def champion_version(tracking_uri: str, model_name: str) -> str:
    from mlflow import MlflowClient

    return str(MlflowClient(tracking_uri, registry_uri=tracking_uri).get_model_version_by_alias(model_name, "champion")
               .version)


def check_endpoints(resolve: Resolver, model_ids: list[tuple[str, str]]) -> list[str]:
    """At start: one line per model saying where it is served or why it is not (not fatal: scores wait)."""
    import urllib.request

    lines = []
    for model_id, feature_set in model_ids:
        try:
            endpoint = resolve(model_id, feature_set)
        except Exception as exc:  # noqa: BLE001 -- reported, the query retries per micro-batch
            lines.append(f"rt_inference: the endpoint of {model_id} cannot be resolved yet: {exc}")
            continue
        if endpoint is None:
            lines.append(f"rt_inference: no endpoint serves {registered_model_name(model_id, feature_set)} yet; "
                         "its vectors wait until one does")
            continue
        ping = endpoint.client.url.rstrip("/") + "/ping" if endpoint.client.kind == "mlflow_local" else None
        try:
            if ping:
                urllib.request.urlopen(ping, timeout=3).close()
            lines.append(f"rt_inference: {endpoint.model_name} v{endpoint.model_version} at {endpoint.client.scoring_url}")
        except OSError as exc:
            lines.append(f"rt_inference: {endpoint.model_name} at {endpoint.client.scoring_url} does not answer yet "
                         f"({exc}); its vectors wait until it does")
    return lines


# -- the query ------------------------------------------------------------------------------------


def ensure_tables(spark, config: RtInferenceConfig) -> None:
    from delta.tables import DeltaTable

    from ..schemas import spark_schema

    for table in (SETUP_VECTORS_STREAM, INFERENCE_SCORES_STREAM):
        builder = DeltaTable.createIfNotExists(spark).location(config.table_path(table)).addColumns(spark_schema(table))
        if table.partition_by:
            builder = builder.partitionedBy(*table.partition_by)
        builder.execute()


def app_id(query_id: str) -> str:
    """The Delta application id of the query ``query_id``'s score appends (the batch id is its version)."""
    return f"{QUERY}:{query_id}"


def _scores_snapshot(config: RtInferenceConfig):
    from deltalake import DeltaTable

    from ..io.delta_tables import storage_options

    return DeltaTable(config.table_path(INFERENCE_SCORES_STREAM), storage_options=storage_options())


def _committed(snapshot, app: str, batch_id: int) -> bool:
    version = snapshot.transaction_version(app)
    return version is not None and version >= batch_id


def write_scores(snapshot, config: RtInferenceConfig, scores: pd.DataFrame, batch_id: int, app: str) -> None:
    """Append with the application transaction (query, batch id), committed against ``snapshot`` (the one whose
    transaction id was checked: a concurrent commit of the same batch fails). delta-rs, not Spark: a few rows
    commit in tens of milliseconds instead of a second or more of Spark jobs."""
    import pyarrow as pa
    from deltalake import CommitProperties, Transaction, write_deltalake

    from ..io.delta_tables import storage_options

    table = pa.Table.from_pandas(scores[SCORE_COLUMNS], schema=INFERENCE_SCORES_STREAM.schema, preserve_index=False)
    write_deltalake(snapshot, table, mode="append", partition_by=list(INFERENCE_SCORES_STREAM.partition_by),
                    commit_properties=CommitProperties(app_transactions=[Transaction(app, batch_id)]),
                    storage_options=storage_options())


def score_batch(vectors: pd.DataFrame, resolve: Resolver, config: RtInferenceConfig, sleep=_wait) -> pd.DataFrame:
    """Every vector of a micro-batch scored, one call per (model_id, feature_set)."""
    vectors = vectors.drop_duplicates(["model_id", "episode_id", "feature_hash"])
    frames = [score_group(group, model_id, feature_set, resolve, config, sleep)
              for (model_id, feature_set), group in vectors.groupby(["model_id", "feature_set"], sort=True)]
    if not frames:
        return pd.DataFrame(columns=SCORE_COLUMNS[:-2])
    return pd.concat(frames, ignore_index=True)


def messages(scores: pd.DataFrame) -> list[tuple[bytes, bytes]]:
    """(key, JSON value) per score: the table row, dates as ISO text."""
    pairs = []
    for row in scores[SCORE_COLUMNS].to_dict(orient="records"):
        row = {k: (v.isoformat() if hasattr(v, "isoformat") else None if v != v else v) for k, v in row.items()}
        pairs.append((row["episode_id"].encode(), json.dumps(row, default=_plain).encode()))
    return pairs


class Publisher(QueryPublisher):
    """The query's producer of scores (see :class:`QueryPublisher`)."""

    def publish(self, scores: pd.DataFrame) -> None:
        self.send(messages(scores))


def _plain(value):
    return value.item() if hasattr(value, "item") else str(value)


def process_batch(spark, config: RtInferenceConfig, batch, batch_id: int, resolve: Resolver,
                  publisher: Publisher | None, status_path: str | None = None, *, query_id: str) -> dict:
    """One micro-batch of the query ``query_id``: score (or, when this batch id already committed,
    read back), write, publish."""
    started = time.perf_counter()
    snapshot = _scores_snapshot(config)
    app = app_id(query_id)
    rerun = _committed(snapshot, app, batch_id)
    if rerun:  # written before a crash: publish what was written, score nothing again
        scores = snapshot.to_pandas(filters=[("stream_batch_id", "=", batch_id)])
        log.warning("rt_inference: micro-batch %d of %s was already written (%d scores): read back, not scored again",
                    batch_id, app, len(scores))
        n_vectors, first_vector_ns = len(scores), None
    else:
        vectors = batch.toPandas()
        n_vectors = len(vectors)
        first_vector_ns = vectors["stream_time"].min() if n_vectors else None
    read_seconds = time.perf_counter() - started
    if not rerun:
        scores = score_batch(vectors, resolve, config)
        scores["stream_batch_id"] = batch_id
        scores["stream_time"] = time.time_ns()
    score_seconds = time.perf_counter() - started - read_seconds
    write_started = time.perf_counter()
    if len(scores) and not rerun:
        write_scores(snapshot, config, scores, batch_id, app)
    write_seconds, committed_ns = time.perf_counter() - write_started, time.time_ns()
    publish_started = time.perf_counter()
    if publisher is not None and len(scores):
        publisher.publish(scores)
    status = {"query": QUERY, "batch_id": batch_id, "vectors": n_vectors, "scores": len(scores), "rerun": rerun,
              "attempts": int(scores["attempts"].max()) if len(scores) else 0,
              "read_seconds": round(read_seconds, 3), "score_seconds": round(score_seconds, 3),
              "write_seconds": round(write_seconds, 3),
              "publish_seconds": round(time.perf_counter() - publish_started, 3),
              "seconds": round(time.perf_counter() - started, 3),
              # from rt gold's commit of the batch's oldest vector to the commit of its score
              "vector_to_score_seconds_max": None if pd.isna(first_vector_ns) else
              round((committed_ns - int(first_vector_ns)) / 1e9, 3),
              "time": time.time()}
    if status_path:
        write_json_atomic(status_path, status)  # `mbolake stream status` may be reading it
    return status


def source(spark, config: RtInferenceConfig):
    return (spark.readStream.format("delta").option("maxFilesPerTrigger", str(config.max_files_per_trigger))
            .load(config.table_path(SETUP_VECTORS_STREAM)))


def start(spark, settings: BusSettings | None, config: RtInferenceConfig, resolve: Resolver, *,
          available_now: bool = False, status_path: str | None = None, on_batch=None):
    """Check the parameters, the bus and the checkpoint, then start the query; returns the StreamingQuery.
    ``settings`` None: scores go to the table only. ``on_batch(status)`` is called after each micro-batch."""
    config.check()
    if settings is not None:
        check_bus(settings, (config.topic,))
    check_checkpoint(config.checkpoint)
    ensure_tables(spark, config)
    publisher = Publisher(settings, config.topic) if settings is not None else None
    query_id = QueryId()

    def run(batch, batch_id):
        status = process_batch(spark, config, batch, batch_id, resolve, publisher, status_path, query_id=query_id.get())
        if on_batch:
            on_batch(status)

    writer = (source(spark, config).writeStream.queryName(QUERY).option("checkpointLocation", config.checkpoint)
              .foreachBatch(run))
    writer = writer.trigger(availableNow=True) if available_now else writer.trigger(processingTime=f"{config.trigger_seconds} seconds")
    return query_id.known(writer.start() if publisher is None else close_when_done(spark, writer, publisher))


__all__ = ["QUERY", "RtInferenceConfig", "Endpoint", "EndpointDown", "start", "process_batch", "score_batch",
           "score_group", "profile_resolver", "check_endpoints", "ensure_tables", "model_input", "messages"]


# -- for the dashboard notebook ---------------------------------------------------------------------


def latest_scores(profile, limit: int = 500, timezone: str = "America/New_York") -> pd.DataFrame:
    """The last ``limit`` scores of ``gold.inference_scores_stream`` (newest vector first), with the vector's
    time in ``timezone`` and the seconds from the vector's time to the commit of its score."""
    from deltalake import DeltaTable

    path = profile.table_path(INFERENCE_SCORES_STREAM.name)
    if not DeltaTable.is_deltatable(path):
        scores = pd.DataFrame({c: pd.Series(dtype=object) for c in SCORE_COLUMNS})
    else:
        scores = DeltaTable(path).to_pandas()
    scores = scores.sort_values(["vector_time", "episode_id"], ascending=False, kind="stable").head(limit)
    scores = scores.reset_index(drop=True)
    scores.insert(0, "vector_at", pd.to_datetime(scores["vector_time"].astype("int64"), utc=True).dt.tz_convert(timezone))
    scores["score_latency_s"] = (scores["stream_time"].astype("int64") - scores["vector_time"].astype("int64")) / 1e9
    return scores


def plot_scores(scores: pd.DataFrame):
    """Each scored setup at its vector's time, at the probability of its predicted class, a colour per class."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for cls, column in CLASS_COLUMNS.items():
        rows = scores[scores["predicted"] == cls].sort_values("vector_at")
        if len(rows):
            fig.add_scatter(x=rows["vector_at"], y=rows[column], mode="markers", name=cls,
                            customdata=rows[["episode_id", "contract_id", "model_version"]].to_numpy(),
                            hovertemplate="%{customdata[0]} %{customdata[1]}<br>p=%{y:.3f} (model v%{customdata[2]})")
    title = "rt inference: scores by predicted class" if len(scores) else "rt inference: no scores yet"
    fig.update_layout(title=title, xaxis_title="setup vector time", yaxis_title="probability of the predicted class",
                      yaxis_range=[0, 1])
    return fig
