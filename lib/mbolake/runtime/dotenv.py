"""``.env``: secrets such as ``DATABENTO_API_KEY`` kept out of code and out of git.

Read from ``$MBOLAKE_HOME/.env`` and the project root's ``.env`` (``.gitignore`` lists it).
A variable already in the environment wins. Lines are ``NAME=value``, optionally prefixed
with ``export``; values may be quoted; ``#`` starts a comment (inside quotes it does not).
Values are never printed: errors name the file, line number and variable only.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from .project import ProfileError, project_root

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class DotenvError(ValueError):
    pass


def parse(text: str, source: str = ".env") -> dict[str, str]:
    values = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, sep, raw = line.partition("=")
        name = name.strip()
        if not sep or not _NAME.fullmatch(name):
            raise DotenvError(f"{source} line {number}: expected NAME=value")
        values[name] = _value(raw.strip(), f"{source} line {number} ({name})")
    return values


def _value(raw: str, where: str) -> str:
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        end = raw.find(quote, 1)
        if end < 0:
            raise DotenvError(f"{where}: the quoted value is not closed")
        rest = raw[end + 1:].strip()
        if rest and not rest.startswith("#"):
            raise DotenvError(f"{where}: text after the closing quote")
        return raw[1:end]
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def candidates() -> list[Path]:
    """``$MBOLAKE_HOME/.env``, then the ``.env`` of the project root found from here."""
    found = []
    if os.environ.get("MBOLAKE_HOME"):
        found.append(Path(os.environ["MBOLAKE_HOME"]) / ".env")
    try:
        found.append(project_root() / ".env")
    except ProfileError:
        pass
    unique = []
    for path in found:
        if path.resolve() not in [p.resolve() for p in unique]:
            unique.append(path)
    return unique


def load_dotenv(paths: list[Path] | None = None) -> list[str]:
    """Put the variables of the ``.env`` files into ``os.environ`` (the environment wins;
    an earlier file wins over a later one). Returns the names set, never the values."""
    loaded = []
    for path in candidates() if paths is None else paths:
        if not path.is_file():
            continue
        for name, value in parse(path.read_text(encoding="utf-8"), str(path)).items():
            if name not in os.environ:
                os.environ[name] = value
                loaded.append(name)
    return loaded
