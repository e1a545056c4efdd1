"""Paths as a published report shows them: relative to the project root, never the absolute
path of the machine that rendered the report.

``display_path`` is for a value the report code knows to be a path (a snapshot folder, a
tag, a raw file); ``scrub`` is the last step before a page is written, for paths inside free
text (what a notebook cell prints, an error message, a traceback). Both follow one rule:

- inside the project root: relative to it (the root itself is ``.``);
- else inside the home folder: ``~/...`` (the user's name stays on the machine);
- else unchanged (a shared mount such as ``/mnt/data`` or ``/dbfs/...`` says where the data is,
  not whose machine it is), and so are URIs other than ``file://`` (``models:/``, ``abfss://``).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse


def _bases(root: str | Path, home: str | Path | None) -> list[tuple[str, str]]:
    """(absolute folder, what it is shown as), the project root before the home folder, each as
    given and resolved (``/tmp`` may be a link); a folder that is the file system's root is none."""
    if home is None:
        try:
            home = Path.home()
        except RuntimeError:  # no HOME and no passwd entry (a job's container)
            home = ""
    bases = []
    for folder, shown in ((root, "."), (home, "~")):
        if not folder:
            continue
        for form in dict.fromkeys((os.path.abspath(folder), os.path.realpath(folder))):
            if Path(form).parent != Path(form):  # never "/"
                bases.append((form.rstrip("/"), shown))
    return bases


def display_path(path, root: str | Path, home: str | Path | None = None) -> str:
    """``path`` (a str, a ``Path`` or a ``file://`` URI) as a report shows it (see the module)."""
    if path is None:
        return ""
    text = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    if text.startswith("file:"):
        text = unquote(urlparse(text).path) or text
    elif re.match(r"^[A-Za-z][\w+.-]*:", text):  # another URI: models:/, abfss://, sqlite:///
        return text
    if not os.path.isabs(text):
        return text
    candidates = dict.fromkeys((os.path.normpath(text), os.path.realpath(text)))
    for base, shown in _bases(root, home):
        for candidate in candidates:
            if candidate == base:
                return shown
            if candidate.startswith(base + "/"):
                rest = candidate[len(base) + 1:]
                return rest if shown == "." else f"{shown}/{rest}"
    return text


def scrub(text: str, root: str | Path, home: str | Path | None = None) -> str:
    """``text`` with every path inside the project root (or the home folder) shown as
    ``display_path`` shows it: plain, as a ``file://`` URI, or HTML-escaped."""
    import html

    for base, shown in _bases(root, home):
        uris = {Path(base).as_uri(), "file://" + base}
        for form in sorted({*uris, *(html.escape(u) for u in uris), base, html.escape(base)}, key=len, reverse=True):
            if form not in text:  # a page is megabytes (plotly.js inline): look before the regex
                continue
            # the folder itself or a path in it: never a longer name that starts the same
            pattern = r"(?<![\w.~-])" + re.escape(form) + r"(/|(?![\w~-]|\.\w))"
            text = re.sub(pattern, lambda m, shown=shown: _shown(shown, bool(m.group(1))), text)
    return text


def _shown(shown: str, inside: bool) -> str:
    """What replaces a base folder: the folder itself as ``shown``; as the start of a path in it,
    nothing for the project root (``root/runs`` is ``runs``) and ``~/`` for the home folder."""
    if not inside:
        return shown
    return "" if shown == "." else f"{shown}/"
