"""Bronze under hostile conditions: two processes at once, kills at named points (real
subprocesses, ``MBOLAKE_KILL_AT`` / ``MBOLAKE_PAUSE_AT``), junk records, re-encoded files,
unreadable entries, near-miss names, a read-only lake. Bronze writes through delta-rs:
no Spark here, the tables are read back with delta-rs."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import zstandard

from mbolake.io import delta_tables
from mbolake.io.dbn import read_header, read_mbo
from mbolake.io.landing import day_folder, sha256_of
from mbolake.runtime.config import load_profile
from mbolake.runtime.context import Context
from mbolake.runtime.faults import KILLED_EXIT_CODE
from mbolake.sample import synth
from mbolake.schemas import BRONZE_MBO, INGEST_MANIFEST, QUARANTINE
from mbolake.stages.bronze import BronzeProcessDBN

SESSION = dt.date(2025, 11, 4)
REPO = Path(__file__).resolve().parents[2]
RUN_BRONZE = """
import json
from mbolake.runtime.context import context
from mbolake.stages.bronze import BronzeProcessDBN
summary = BronzeProcessDBN(chunk_records=20_000).run(context("local"), underlier="ES", progress=False)
print(json.dumps(summary.details[["path", "status", "reason"]].to_dict("records")))
"""


@pytest.fixture(scope="module")
def generated_day(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    [path] = synth.generate_sample(out, synth.SynthParams(sessions=1, first_date=SESSION, intensity=60_000), progress=False)
    return path


@pytest.fixture(scope="module")
def generated_records(generated_day):
    return read_mbo(generated_day)[1]


def bronze_context() -> Context:
    return Context(profile=load_profile("local"))


def land(ctx, src: Path, name: str | None = None, day: dt.date = SESSION) -> Path:
    folder = day_folder(ctx.profile.raw_dbn_root, "ES", "FUT", day)
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(src, folder / (name or src.name)))


def bronze_rows(ctx) -> pa.Table:
    return delta_tables.read(ctx.profile, BRONZE_MBO, columns=["source_file", "record_index", "action"])


def manifest(ctx):
    return delta_tables.read(ctx.profile, INGEST_MANIFEST).to_pandas()


def start_bronze(project: Path, **env) -> subprocess.Popen:
    environment = {**os.environ, "MBOLAKE_HOME": str(project), "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(REPO)])), **env}
    return subprocess.Popen([sys.executable, "-c", RUN_BRONZE], cwd=project, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> tuple[int, list]:
    out, err = process.communicate(timeout=180)
    if process.returncode not in (0, KILLED_EXIT_CODE):
        raise AssertionError(f"bronze process failed ({process.returncode}):\n{err[-3000:]}")
    return process.returncode, json.loads(out.strip().splitlines()[-1]) if process.returncode == 0 else []


def with_records_changed(src: Path, dst: Path, change) -> np.ndarray:
    """A copy of ``src`` (uncompressed) whose records went through ``change``; returns them."""
    header = read_header(src)
    raw = zstandard.ZstdDecompressor().stream_reader(open(src, "rb")).read() if header.compressed else src.read_bytes()
    records = np.frombuffer(raw[header.metadata_bytes:], dtype=read_mbo(src)[1].dtype).copy()
    change(records)
    dst.write_bytes(raw[: header.metadata_bytes] + records.tobytes())
    return records


def corrupt_some(records: np.ndarray) -> None:
    records["action"][[10, 11, 12]] = b"\xe3"
    records["side"][100] = b"\r"
    records["flags"][200] |= 0x01
    records["price"][300] = 9_000_000_000_000_000_000 // 2
    adds = np.flatnonzero(records["action"] == b"A")
    records["price"][adds[adds > 400][0]] = np.iinfo(np.int64).max


# -- D1: two processes ingesting the same new file --------------------------------------


@pytest.mark.parametrize("table_state", ["new_table", "existing_table"])
def test_two_processes_ingesting_the_same_new_file_land_it_once(project, generated_day, table_state, request):
    ctx = bronze_context()
    before = 0
    if table_state == "existing_table":  # only this case needs Databento's file (a table that holds other rows)
        dbn_fixtures = request.getfixturevalue("dbn_fixtures")
        land(ctx, dbn_fixtures / "test_data.mbo.v3.dbn.zst", day=dt.date(2020, 12, 28))
        before = BronzeProcessDBN().run(ctx, underlier="ES", progress=False).rows_out
    land(ctx, generated_day)
    gate = project / "gate"
    # both processes decode the file and hold just before their bronze.mbo commit, then commit together
    processes = [start_bronze(project, MBOLAKE_PAUSE_AT="bronze.before_data_commit", MBOLAKE_PAUSE_GATE=str(gate))
                 for _ in range(2)]
    deadline = time.monotonic() + 120
    while len(list(project.glob("gate.*.waiting"))) < 2 and time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            break  # a process that does not pause (the code before the fix) just runs on
        time.sleep(0.05)
    gate.touch()
    results = [finish(p)[1] for p in processes]

    name = f"raw-dbn/ES/FUT/{SESSION:%Y%m%d}/{generated_day.name}"
    statuses = sorted((row["status"], row["reason"][-37:]) for rows in results for row in rows if row["path"] == name)
    assert bronze_rows(ctx).num_rows == before + 59_166, results
    assert statuses == [("ingested", ""), ("skipped_duplicate", "was committed by a concurrent writer)")], results
    rows = manifest(ctx)
    assert rows[rows.path == name].status.value_counts().to_dict() == {"ingested": 1, "skipped_duplicate": 1}


# -- D2: recovered after a kill right after the data commit ------------------------------


def test_a_file_recovered_after_a_kill_right_after_its_data_commit_gets_its_full_manifest_row(project, generated_day):
    ctx = bronze_context()
    land(ctx, generated_day)
    code, _ = finish(start_bronze(project, MBOLAKE_KILL_AT="bronze.after_data_commit"))
    assert code == KILLED_EXIT_CODE
    assert bronze_rows(ctx).num_rows == 59_166 and manifest(ctx).empty

    summary = BronzeProcessDBN().run(ctx, underlier="ES", progress=False)

    [row] = manifest(ctx).to_dict("records")
    assert row["status"] == "ingested" and row["reason"].startswith("recovered")
    assert row["record_count"] == summary.rows_out == 59_166
    assert list(row["session_dates"]) == [SESSION]
    assert (row["dbn_version"], row["dataset"], row["schema"]) == (3, "GLBX.MDP3", "mbo")
    assert row["file_sha256"] == sha256_of(generated_day) and row["rejected_records"] == 0
    assert bronze_rows(ctx).num_rows == 59_166


# -- record validation ------------------------------------------------------------------


def test_records_with_bad_codes_are_quarantined_with_their_index_and_the_rest_lands(project, generated_day, tmp_path):
    ctx = bronze_context()
    folder = day_folder(ctx.profile.raw_dbn_root, "ES", "FUT", SESSION)
    folder.mkdir(parents=True)
    records = with_records_changed(generated_day, folder / "junk.mbo.dbn", corrupt_some)
    bad_add = int(np.flatnonzero((records["price"] == np.iinfo(np.int64).max) & (records["action"] == b"A"))[0])

    summary = BronzeProcessDBN(chunk_records=20_000).run(ctx, underlier="ES", progress=False)

    [outcome] = summary.details.itertuples()
    assert (outcome.status, outcome.record_count, outcome.rejected_records) == ("ingested", 59_166 - 7, 7)
    assert any("7 record(s) rejected" in note for note in summary.notes)
    quarantine = delta_tables.read(ctx.profile, QUARANTINE).to_pandas().sort_values("record_index")
    assert quarantine.record_index.tolist() == [10, 11, 12, 100, 200, 300, bad_add]
    assert set(quarantine.source_file) == {f"raw-dbn/ES/FUT/{SESSION:%Y%m%d}/junk.mbo.dbn"}
    assert quarantine.detail.tolist()[:6] == [
        "action 'ã' is not one of ACMRTFN", "action 'ã' is not one of ACMRTFN", "action 'ã' is not one of ACMRTFN",
        "side '\\r' is not one of BAN", f"flags 0x{int(records['flags'][200]):02x} set the undefined bit 0x01",
        "price 4500000000000000000 is out of range"]
    assert quarantine.detail.tolist()[6] == "undefined price on action 'A'"
    landed = bronze_rows(ctx)
    assert landed.num_rows == 59_166 - 7
    assert set(landed.column("action").to_pylist()) == {"R", "A", "C", "M", "T", "F"}
    assert not {10, 11, 12, 100, 200, 300, bad_add} & set(landed.column("record_index").to_pylist())
    assert manifest(ctx).rejected_records.tolist() == [7]


def test_a_file_of_random_codes_is_quarantined_whole(project, generated_day):
    ctx = bronze_context()
    folder = day_folder(ctx.profile.raw_dbn_root, "ES", "FUT", SESSION)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)

    def randomise(records):
        records["action"] = rng.choice(np.frombuffer(b"\xe3\rXYZ", "S1"), len(records))
        records["price"] = rng.integers(2**62, 2**63 - 2, len(records))

    with_records_changed(generated_day, folder / "random.mbo.dbn", randomise)
    summary = BronzeProcessDBN().run(ctx, underlier="ES", progress=False)
    [outcome] = summary.details.itertuples()
    assert outcome.status == "quarantined" and outcome.reason.startswith("invalid_records: ")
    assert "all 59166 records fail validation" in outcome.reason
    assert not delta_tables.exists(ctx.profile, BRONZE_MBO) or bronze_rows(ctx).num_rows == 0


# -- content key ------------------------------------------------------------------------


def test_decompressed_and_recompressed_copies_of_an_ingested_file_add_no_row(project, generated_day):
    ctx = bronze_context()
    land(ctx, generated_day)
    BronzeProcessDBN().run(ctx, underlier="ES", progress=False)
    raw = zstandard.ZstdDecompressor().stream_reader(open(generated_day, "rb")).read()
    other_day = day_folder(ctx.profile.raw_dbn_root, "ES", "FUT", SESSION + dt.timedelta(days=1))
    other_day.mkdir(parents=True)
    (other_day / "plain.mbo.dbn").write_bytes(raw)
    (other_day / "level19.mbo.dbn.zst").write_bytes(zstandard.ZstdCompressor(level=19).compress(raw))
    assert sha256_of(other_day / "level19.mbo.dbn.zst") != sha256_of(generated_day)

    again = BronzeProcessDBN().run(ctx, underlier="ES", progress=False)

    assert again.details.status.tolist() == ["skipped_duplicate"] * 3
    assert bronze_rows(ctx).num_rows == 59_166
    rows = manifest(ctx)
    assert rows.sha256.nunique() == 1 and rows.file_sha256.nunique() == 3


def test_a_lake_keyed_by_byte_hash_still_matches_its_files(project, generated_day):
    """A manifest written before the content key (old schema, byte hashes) is still honoured."""
    ctx = bronze_context()
    land(ctx, generated_day)
    old_schema = pa.schema([f for f in INGEST_MANIFEST.schema if f.name not in ("file_sha256", "rejected_records")])
    old_row = {name: None for name in old_schema.names} | {
        "path": "raw-dbn/old", "sha256": sha256_of(generated_day), "status": "ingested", "session_dates": []}
    from deltalake import write_deltalake

    write_deltalake(ctx.profile.table_path(INGEST_MANIFEST.name), pa.Table.from_pylist([old_row], schema=old_schema))

    summary = BronzeProcessDBN().run(ctx, underlier="ES", progress=False)

    assert summary.details[["status", "reason"]].values.tolist() == [["skipped_duplicate", "sha256 already ingested"]]
    assert sorted(manifest(ctx).file_sha256.fillna("-")) == ["-", sha256_of(generated_day)]


# -- quarantine rows once, after a kill right after the quarantine commit -----------------


def test_quarantine_rows_are_not_duplicated_after_a_kill_right_after_the_quarantine_commit(project, generated_day):
    ctx = bronze_context()
    folder = day_folder(ctx.profile.raw_dbn_root, "ES", "FUT", SESSION)
    folder.mkdir(parents=True)
    with_records_changed(generated_day, folder / "junk.mbo.dbn", corrupt_some)
    (folder / "zz_garbage.mbo.dbn").write_bytes(np.random.default_rng(1).bytes(4096))
    code, _ = finish(start_bronze(project, MBOLAKE_KILL_AT="bronze.after_quarantine_commit"))
    assert code == KILLED_EXIT_CODE
    assert len(delta_tables.read(ctx.profile, QUARANTINE)) == 7 and manifest(ctx).empty

    first = BronzeProcessDBN().run(ctx, underlier="ES", progress=False)
    second = BronzeProcessDBN().run(ctx, underlier="ES", progress=False)

    quarantine = delta_tables.read(ctx.profile, QUARANTINE).to_pandas()
    assert quarantine.groupby("source_file").size().to_dict() == {
        f"raw-dbn/ES/FUT/{SESSION:%Y%m%d}/junk.mbo.dbn": 7, f"raw-dbn/ES/FUT/{SESSION:%Y%m%d}/zz_garbage.mbo.dbn": 1}
    assert first.details[["status", "rejected_records"]].values.tolist() == [["ingested", 7], ["quarantined", 0]]
    assert second.details.status.tolist() == ["skipped_duplicate", "skipped_duplicate"]
    assert bronze_rows(ctx).num_rows == 59_166 - 7


# -- unreadable entries, near-miss names, a read-only lake --------------------------------


def test_unreadable_entries_are_quarantined_and_the_run_goes_on(project, generated_day):
    ctx = bronze_context()
    good = land(ctx, generated_day, "b_good.mbo.dbn.zst")
    (good.parent / "a_dangling.mbo.dbn.zst").symlink_to(good.parent / "gone.dbn.zst")
    (good.parent / "a_folder.mbo.dbn.zst").mkdir()
    unreadable = []
    if os.geteuid() != 0:  # root reads any file whatever its mode
        unreadable = [land(ctx, generated_day, "c_no_permission.mbo.dbn.zst")]
        unreadable[0].chmod(0)

    summary = BronzeProcessDBN().run(ctx, underlier="ES", progress=False)

    details = summary.details.set_index(summary.details.path.str.rsplit("/", n=1).str[-1])
    assert details.loc["b_good.mbo.dbn.zst", "status"] == "ingested"
    assert details.loc["a_dangling.mbo.dbn.zst", "reason"].startswith("unreadable: ")
    assert "FileNotFoundError" in details.loc["a_dangling.mbo.dbn.zst", "reason"]
    assert "IsADirectoryError" in details.loc["a_folder.mbo.dbn.zst", "reason"]
    assert summary.details.status.value_counts().to_dict() == {"quarantined": 2 + len(unreadable), "ingested": 1}
    quarantine = delta_tables.read(ctx.profile, QUARANTINE).to_pandas()
    assert sorted(quarantine.reason) == ["unreadable"] * (2 + len(unreadable))
    assert bronze_rows(ctx).num_rows == 59_166


def test_near_miss_names_are_listed_as_skipped_with_the_naming_rule(project, generated_day):
    ctx = bronze_context()
    land(ctx, generated_day)
    for name in ("x.dbn.zstd", "x.mbo.zst", "x.DBN"):
        land(ctx, generated_day, name)
    (day_folder(ctx.profile.raw_dbn_root, "ES", "FUT", SESSION) / "notes.txt").write_text("not data")

    summary = BronzeProcessDBN().run(ctx, underlier="ES", progress=False)

    skipped = summary.details[summary.details.status == "skipped_name"]
    assert sorted(skipped.path.str.rsplit("/", n=1).str[-1]) == ["x.DBN", "x.dbn.zstd", "x.mbo.zst"]
    assert set(skipped.reason) == {"not landed: a landing file's name must end in .dbn or .dbn.zst"}
    assert any("skipped_name: a landing file's name must end in .dbn or .dbn.zst" in n for n in summary.notes)
    assert manifest(ctx).status.value_counts().to_dict() == {"skipped_name": 3, "ingested": 1}


def test_a_read_only_lake_fails_before_work_naming_the_path(project, generated_day):
    ctx = bronze_context()
    land(ctx, generated_day)
    lake = Path(ctx.profile.table_path(BRONZE_MBO.name)).parent
    lake.mkdir(parents=True, exist_ok=True)
    if shutil.which("chattr") is None or subprocess.run(["chattr", "-R", "+i", str(lake)]).returncode:
        pytest.skip("chattr +i is not available here (the read-only lake is made immutable)")
    try:
        with pytest.raises(delta_tables.LakeNotWritable, match=f"the lake is not writable: {lake}"):
            BronzeProcessDBN().run(ctx, underlier="ES", progress=False)
    finally:
        subprocess.run(["chattr", "-R", "-i", str(lake)], check=True)
    assert not delta_tables.exists(ctx.profile, BRONZE_MBO)
