"""pyproject.toml and environment.yml pin the same packages at the same versions."""
from __future__ import annotations

import re
import tomllib

import yaml

from tests.helpers import REPO

_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*?)\s*$")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for req in requirements:
        match = _REQ.match(req)
        assert match, req
        name, spec = _normalise(match.group(1)), match.group(2).replace(" ", "")
        assert name not in pins, f"{name} listed twice"
        pins[name] = spec
    return pins


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return _pins(project["dependencies"] + project["optional-dependencies"]["dev"])


def environment() -> dict:
    return yaml.safe_load((REPO / "environment.yml").read_text())


def environment_pip() -> list[str]:
    pip = [d["pip"] for d in environment()["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip) == 1
    return pip[0]


def test_same_packages_and_pins():
    env = _pins([line for line in environment_pip() if not line.startswith("-")])
    pyp = pyproject_pins()
    assert sorted(set(pyp) - set(env)) == [], "in pyproject.toml but not environment.yml"
    assert sorted(set(env) - set(pyp)) == [], "in environment.yml but not pyproject.toml"
    assert {n: (pyp[n], env[n]) for n in pyp if pyp[n] != env[n]} == {}


def test_every_dependency_is_pinned_exactly():
    for name, spec in pyproject_pins().items():
        assert re.fullmatch(r"==\d+(\.\d+)*", spec), f"{name}: {spec!r}"


def test_key_pins_present():
    pins = pyproject_pins()
    for name in ("pyspark", "delta-spark", "databento", "databento-dbn", "numpy", "pyarrow", "pytest"):
        assert name in pins
    # Delta Lake's Spark package is built for one Spark release line
    assert pins["pyspark"].split(".")[0] == pins["delta-spark"].split(".")[0]


def test_environment_installs_the_project_itself():
    assert "-e ." in environment_pip()


def test_environment_conda_packages():
    env = environment()
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "python=3.11" in conda
    assert "openjdk=17" in conda
    assert any(d == "quarto" or d.startswith("quarto=") for d in conda)
    assert "pip" in conda
    assert env["channels"] == ["conda-forge"]


def test_python_requirement_matches_environment():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11,<3.12"
