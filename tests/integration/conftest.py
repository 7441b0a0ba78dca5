"""Fixtures for the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from children import kill_leftovers


@pytest.fixture(autouse=True)
def _no_orphan_children() -> Iterator[None]:
    """No child process started by a test outlives it."""
    yield
    kill_leftovers()
