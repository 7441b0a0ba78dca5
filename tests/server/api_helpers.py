"""Helpers shared by the server tests (kept out of conftest.py so tests can import them)."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPResponse

NOTEBOOK = "proj/analysis.ipynb"

Fetch = Callable[..., Awaitable[Any]]


def png_bytes() -> bytes:
    """A valid 1×1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@dataclass
class Populated:
    """What the populated store holds (ids to ask the API about)."""

    root: Path
    store_dir: Path
    notebook: str
    experiment_id: str
    session: str
    cells: list[str]
    trials: list[str]
    failed: str
    long_metric_run: str
    bulk_experiment_id: str
    extra: dict[str, Any] = field(default_factory=dict)


async def expect_error(awaitable: Awaitable[Any], status: int) -> dict[str, Any]:
    """Await a request that must fail with ``status``; return its JSON error body."""
    with pytest.raises(HTTPClientError) as info:
        await awaitable
    response: HTTPResponse | None = info.value.response
    assert info.value.code == status, (info.value.code, response.body if response else None)
    assert response is not None
    assert response.headers["Content-Type"].startswith("application/json")
    body = json.loads(response.body)
    assert "Traceback" not in response.body.decode()
    return body
