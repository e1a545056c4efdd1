"""``.env``: read from MBOLAKE_HOME / the project root, the environment wins, values never shown."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mbolake.io.databento_download import MissingApiKey, api_key
from mbolake.runtime.dotenv import DotenvError, load_dotenv, parse

REPO = Path(__file__).resolve().parents[2]


def test_parse_names_quotes_comments_and_export():
    text = """
# a comment
DATABENTO_API_KEY=db-abc123   # trailing comment
export AZURE_STORAGE_ACCOUNT_NAME = "acct # not a comment"
SINGLE='a b'
EMPTY=
URL=https://x.example/a#b
"""
    assert parse(text) == {"DATABENTO_API_KEY": "db-abc123", "AZURE_STORAGE_ACCOUNT_NAME": "acct # not a comment",
                           "SINGLE": "a b", "EMPTY": "", "URL": "https://x.example/a#b"}


@pytest.mark.parametrize("line, fragment", [("NOEQUALS", "line 2: expected NAME=value"),
                                            ("1BAD=x", "line 2: expected NAME=value"),
                                            ('KEY="db-secret-value', r"line 2 \(KEY\): the quoted value is not closed")])
def test_a_bad_line_names_file_and_line_but_never_the_value(line, fragment):
    with pytest.raises(DotenvError, match=fragment) as error:
        parse("OK=1\n" + line, "/p/.env")
    assert "secret" not in str(error.value) and str(error.value).startswith("/p/.env")


def test_the_api_key_comes_from_the_projects_env_file(project, monkeypatch):
    monkeypatch.delenv("DATABENTO_API_KEY", raising=False)
    with pytest.raises(MissingApiKey, match="DATABENTO_API_KEY is not set"):
        api_key()
    (project / ".env").write_text("DATABENTO_API_KEY=db-from-dotenv\n")
    assert api_key() == "db-from-dotenv"


def test_the_environment_wins_over_the_file(project, monkeypatch):
    monkeypatch.setenv("DATABENTO_API_KEY", "db-from-env")
    (project / ".env").write_text("DATABENTO_API_KEY=db-from-dotenv\nMBOLAKE_DOTENV_TEST=1\n")
    monkeypatch.delenv("MBOLAKE_DOTENV_TEST", raising=False)
    assert load_dotenv() == ["MBOLAKE_DOTENV_TEST"]  # names, not values
    assert os.environ["DATABENTO_API_KEY"] == "db-from-env"
    monkeypatch.delenv("MBOLAKE_DOTENV_TEST")


def test_profile_placeholders_are_filled_from_env_file(project, monkeypatch):
    from mbolake.runtime.config import load_profile

    monkeypatch.delenv("MBOLAKE_DOTENV_LAKE", raising=False)
    (project / "conf" / "envtest.yaml").write_text("lake_root: ${MBOLAKE_DOTENV_LAKE}\n")
    (project / ".env").write_text(f"MBOLAKE_DOTENV_LAKE={project / 'elsewhere'}\n")
    try:
        assert load_profile("envtest").settings["lake_root"] == str(project / "elsewhere")
    finally:
        os.environ.pop("MBOLAKE_DOTENV_LAKE", None)


def test_env_is_gitignored():
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO).returncode
    assert ignored == 0
