"""The project root module: config and dotenv both use it (the contract profiles-dotenv-root in
pyproject.toml keeps dotenv and project from importing config)."""
from __future__ import annotations

from mbolake.runtime import config, dotenv, project


def test_config_and_dotenv_share_one_project_root_and_error():
    # a missing root raised inside dotenv or config is the ProfileError their callers catch
    assert config.ProfileError is project.ProfileError is dotenv.ProfileError
    assert config.project_root is project.project_root is dotenv.project_root


def test_project_root_comes_from_mbolake_home(monkeypatch, tmp_path):
    monkeypatch.setenv("MBOLAKE_HOME", str(tmp_path / "elsewhere"))
    assert project.project_root() == (tmp_path / "elsewhere").resolve()
    assert dotenv.candidates()[0] == tmp_path / "elsewhere" / ".env"

