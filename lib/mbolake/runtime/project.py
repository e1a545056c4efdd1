"""The project root: the folder holding ``conf/<default profile>.yaml``, or ``MBOLAKE_HOME`` when set.

The profiles (``config``) and the ``.env`` files (``dotenv``) are both found from it; it imports
neither, so the dependency goes one way: config -> dotenv -> project.
"""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_PROFILE = "local"


class ProfileError(ValueError):
    """A profile cannot be loaded: no project root, an unknown profile, a missing variable."""


def project_root() -> Path:
    home = os.environ.get("MBOLAKE_HOME")
    if home:
        return Path(home).resolve()
    here = Path(__file__).resolve()
    for parent in [Path.cwd(), *Path.cwd().parents, *here.parents]:
        if (parent / "conf" / f"{DEFAULT_PROFILE}.yaml").exists():
            return parent
    raise ProfileError("cannot find the project root (a folder with conf/local.yaml); set MBOLAKE_HOME")
