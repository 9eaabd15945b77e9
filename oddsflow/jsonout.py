"""``--json`` output: one form for every command, so a script parses all of them the same way.

Times are ISO 8601 in UTC to the second with a ``Z`` (``2026-12-02T02:19:48Z``) — never
``2026-12-02 02:19:48+00:00`` (``str()`` of a datetime) beside ``…T…+00:00`` (``isoformat()``);
a naive time is taken as UTC. Enums are their values, dataclasses and models plain objects, bytes
text, and NaN or infinity (not JSON) null.
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def iso(t: datetime | None) -> str | None:
    """``2026-12-02T02:19:48Z``; None stays None."""
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime(ISO_FORMAT)


def iso_from_unix(seconds: float | None) -> str | None:
    return None if seconds is None else iso(datetime.fromtimestamp(seconds, UTC))


def plain(value: Any) -> Any:
    """``value`` as JSON types, recursively (see the module docstring)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, Decimal):
        return plain(float(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "model_dump"):  # pydantic models
        return plain(value.model_dump(mode="python", warnings=False))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "keys") and hasattr(value, "__getitem__"):  # asyncpg.Record
        return {str(k): plain(value[k]) for k in value.keys()}  # noqa: SIM118
    return str(value)


def dumps(value: Any) -> str:
    """One JSON document on one line."""
    return json.dumps(plain(value), allow_nan=False)


def emit(value: Any) -> None:
    """Print ``value`` as one JSON document (flushed: ``--watch`` streams one per sample)."""
    print(dumps(value), flush=True)
