"""The environment a run executed in: Python, imported packages, git state, seeds.

Captured from what the kernel has *imported* (not everything installed), so a comparison of
two runs shows the versions that could have mattered.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

_SEED_CALL = re.compile(
    r"\b(?P<call>(?:np|numpy)\.random\.seed|random\.seed|torch\.manual_seed|tf\.random\.set_seed"
    r"|set_seed|default_rng)\(\s*(?P<value>\d+)\s*\)"
)
_RANDOM_STATE = re.compile(r"\brandom_state\s*=\s*(?P<value>\d+)")


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return dict(metadata.packages_distributions())


@functools.cache
def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def imported_packages() -> dict[str, str]:
    """Distribution -> version for every top-level module imported so far."""
    mapping = _distributions()
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    found: dict[str, str] = {}
    for name in {m.partition(".")[0] for m in list(sys.modules)}:
        if not name or name.startswith("_") or name in stdlib:
            continue
        for dist in mapping.get(name, ()):
            version = _version(dist)
            if version:
                found[dist] = version
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


def git_state(directory: Path) -> dict[str, Any]:
    """Commit, branch and dirty flag of the repository holding ``directory`` (empty if none)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=directory,
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD") or "",
        "dirty": bool(status),
    }


def detect_seeds(code_cells: list[str]) -> dict[str, str]:
    """Seeds visible in the executed code (``np.random.seed(0)``, ``random_state=42``, ...)."""
    seeds: dict[str, str] = {}
    for code in code_cells:
        for match in _SEED_CALL.finditer(code):
            seeds[match.group("call")] = match.group("value")
        for match in _RANDOM_STATE.finditer(code):
            seeds["random_state"] = match.group("value")
    return seeds


def snapshot(code_cells: list[str], git: dict[str, Any]) -> dict[str, Any]:
    """A JSON-ready environment description."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": imported_packages(),
        "git": git,
        "seeds": detect_seeds(code_cells),
    }


def digest(env: dict[str, Any]) -> str:
    """A short content hash of an environment snapshot."""
    return hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()[:16]
