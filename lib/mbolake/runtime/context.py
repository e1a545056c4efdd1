"""What a stage runs with: the profile, the Spark session, the code version."""
from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass, field
from functools import cached_property

from .config import Profile, load_profile


def code_version(root) -> str:
    """The git commit of the code (``+dirty`` when the tree has changes), or ``unknown``."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass
class Context:
    profile: Profile
    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    @cached_property
    def spark(self):
        from .spark import get_spark

        return get_spark(self.profile)

    @cached_property
    def code_version(self) -> str:
        return code_version(self.profile.root)


def context(profile: str | Profile | None = None) -> Context:
    from .figures import use_embedded_figures

    if not isinstance(profile, Profile):
        profile = load_profile(profile)
    use_embedded_figures()
    return Context(profile=profile)
