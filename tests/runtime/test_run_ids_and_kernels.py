"""Run ids that never meet, an id in use refused before any work, and the kernel start timeout as a
setting whose failure says what was waited for and how to raise it."""
from __future__ import annotations

import json
import sys
import threading

import nbformat
import pytest

from mbolake.runtime import kernels, orchestrator
from mbolake.runtime.config import ProfileError, load_profile

from tests.helpers import make_project


def test_run_ids_drawn_in_the_same_second_by_many_threads_are_all_different(tmp_path):
    claimed, barrier = [], threading.Barrier(16)

    def claim():
        barrier.wait()
        claimed.append(orchestrator.claim_run_dir(tmp_path, None)[0])

    threads = [threading.Thread(target=claim) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(claimed)) == 16 and sorted(p.name for p in tmp_path.iterdir()) == sorted(claimed)
    assert len({run_id[:16] for run_id in claimed}) <= 2  # the UTC second first: runs list in start order


def test_an_explicit_run_id_in_use_is_refused_before_any_work(project, capsys):
    (project / "runs" / "nightly").mkdir(parents=True)
    (project / "runs" / "nightly" / "run.json").write_text('{"status": "ok"}')

    assert orchestrator.main_run(["10_bronze"], {}, "nightly", None) == 2
    err = capsys.readouterr().err
    assert "run id 'nightly' is already in use" in err and "--run-id" in err
    assert json.loads((project / "runs" / "nightly" / "run.json").read_text()) == {"status": "ok"}  # untouched
    assert sorted(p.name for p in (project / "runs").iterdir()) == ["nightly"]
    with pytest.raises(orchestrator.RunIdInUse, match="'nightly'"):
        orchestrator.run_notebooks(["10_bronze"], run_id="nightly", log=lambda _: None)


@pytest.mark.parametrize("run_id, says", [("streams", "reserved"), ("../elsewhere", "not a folder name"),
                                          (".hidden", "not a folder name")])
def test_a_run_id_that_is_not_a_run_folder_is_refused(project, capsys, run_id, says):
    assert orchestrator.main_run(["10_bronze"], {}, run_id, None) == 2
    assert says in capsys.readouterr().err
    assert not (project / "elsewhere").exists() and not (project / "runs" / run_id).exists()


def test_the_start_timeout_comes_from_the_environment_then_the_profile_then_the_default(project, monkeypatch):
    monkeypatch.delenv(kernels.START_TIMEOUT_ENV, raising=False)
    assert kernels.start_timeout(load_profile()) == 300  # conf/local.yaml
    conf = project / "conf" / "local.yaml"
    conf.write_text(conf.read_text().replace("kernel_start_timeout_s: 300", "kernel_start_timeout_s: 45"))
    assert kernels.start_timeout(load_profile()) == 45
    monkeypatch.setenv(kernels.START_TIMEOUT_ENV, "900")
    assert kernels.start_timeout(load_profile()) == 900
    monkeypatch.setenv(kernels.START_TIMEOUT_ENV, "soon")
    with pytest.raises(ProfileError, match="MBOLAKE_KERNEL_START_TIMEOUT must be a whole number of seconds"):
        kernels.start_timeout(load_profile())


SLOW_KERNEL = """\
import runpy, sys, time
time.sleep({delay})
sys.argv = ["ipykernel_launcher", "-f", sys.argv[1]]
runpy.run_module("ipykernel_launcher", run_name="__main__")
"""


@pytest.fixture
def slow_kernel_home(tmp_path, monkeypatch):
    """A home with one small notebook, and a ``mbolake`` kernel spec that starts 8 s late."""
    home = tmp_path / "home"
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('profile = "local"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print('kernel up')")],
        metadata={"kernelspec": {"name": orchestrator.KERNEL_NAME, "language": "python", "display_name": "mbolake"},
                  "language_info": {"name": "python"}})
    (home / "notebooks" / "00_setup").mkdir(parents=True)
    nbformat.write(notebook, home / "notebooks" / "00_setup" / "tiny.ipynb")
    make_project(home)
    spec = tmp_path / "jupyter" / "kernels" / orchestrator.KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-c", SLOW_KERNEL.format(delay=8), "{connection_file}"],
        "display_name": "mbolake (slow start)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))  # before the installed spec
    monkeypatch.setenv("MBOLAKE_HOME", str(home))
    return home


@pytest.mark.notebooks
def test_a_kernel_slower_than_the_start_timeout_fails_naming_the_setting(slow_kernel_home, monkeypatch):
    monkeypatch.setenv(kernels.START_TIMEOUT_ENV, "3")
    with pytest.raises(orchestrator.NotebookFailed) as failure:
        orchestrator.run_notebooks(["00_setup/tiny"], run_id="slow", log=lambda _: None)
    message = str(failure.value)
    assert "no reply to its first kernel_info request within 3 s" in message
    assert "notebooks.kernel_start_timeout_s in conf/local.yaml" in message and "MBOLAKE_KERNEL_START_TIMEOUT" in message
    record = json.loads((slow_kernel_home / "runs" / "slow" / "run.json").read_text())
    assert record["status"] == "failed" and "KernelStartTimeout" in record["failed"]["error"]

    monkeypatch.setenv(kernels.START_TIMEOUT_ENV, "120")  # the same kernel, given the time it needs
    [run] = orchestrator.run_notebooks(["00_setup/tiny"], run_id="patient", log=lambda _: None)
    assert "kernel up" in run.output.read_text()
