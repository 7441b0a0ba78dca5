"""Artifact files on the local disk: confined paths and atomic writes.

Every artifact of run ``R`` lives under ``<root>/<R>/``. A path is accepted only when it is
relative, has no ``..`` part, and its real location (symlinks resolved) stays inside the
run's directory; anything else is refused before a byte is written. Files are written to a
temporary name in the destination folder and renamed into place, so a reader never sees a
half-written file and a crash leaves at worst a stray ``.nbmlops-tmp-*`` file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from nbmlops.errors import InvalidArgument, NotFound
from nbmlops.validation import validate_artifact_path

_CHUNK = 1 << 20
TMP_PREFIX = ".nbmlops-tmp-"


class LocalArtifactRepository:
    """Reads and writes artifact files under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def run_dir(self, run_id: str) -> Path:
        return self.root / run_id

    def resolve(self, run_id: str, path: str) -> Path:
        """The confined file path for artifact ``path`` of ``run_id`` (InvalidArgument if not)."""
        rel = validate_artifact_path(path)
        base = self.run_dir(run_id)
        target = base.joinpath(*rel.split("/"))
        # Measured from the real root, so a symlinked run folder cannot lead out either.
        real_base = os.path.join(os.path.realpath(self.root), run_id)
        real_target = os.path.realpath(target)
        if os.path.commonpath([real_base, real_target]) != real_base or real_target == real_base:
            raise InvalidArgument(
                f"artifact path {path!r} resolves outside the run's artifact directory (symlink?)"
            )
        return target

    def write(self, run_id: str, path: str, source: bytes | Path) -> tuple[int, str]:
        """Atomically write bytes or copy a local file; returns (size, sha256)."""
        target = self.resolve(run_id, path)
        if target.is_dir():
            raise InvalidArgument(f"artifact path {path!r} is a folder of the run, not a file")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InvalidArgument(
                f"artifact path {path!r} runs through an existing artifact file"
            ) from None
        # Re-check after mkdir: a component could be a symlink created meanwhile.
        target = self.resolve(run_id, path)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(source, (bytes, bytearray, memoryview)):
                    data = bytes(source)
                    out.write(data)
                    digest.update(data)
                    size = len(data)
                else:
                    try:
                        handle = open(source, "rb")  # noqa: SIM115 - closed below
                    except OSError as exc:
                        raise InvalidArgument(
                            f"cannot read artifact source {str(source)!r}: {exc}"
                        ) from None
                    with handle:
                        while chunk := handle.read(_CHUNK):
                            out.write(chunk)
                            digest.update(chunk)
                            size += len(chunk)
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        return size, digest.hexdigest()

    def read(self, run_id: str, path: str) -> bytes:
        target = self.resolve(run_id, path)
        try:
            return target.read_bytes()
        except FileNotFoundError:
            raise NotFound(
                f"artifact file {path!r} of run {run_id} is missing from the store"
            ) from None
        except IsADirectoryError:
            raise InvalidArgument(f"artifact path {path!r} is a folder, not a file") from None
