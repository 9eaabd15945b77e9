"""Side-by-side runs on one broker and database: tests, benchmarks and backfills.

``isolated_settings`` gives a run its own topic prefix (so its own consumer groups and topics)
and its own Postgres schemas; ``child_env`` hands exactly those settings to a child ``oddsflow``
process through the environment, the way an operator would.
"""

from __future__ import annotations

import json
import os
import uuid
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from core.settings import Settings


def isolated_settings(settings: Settings, tag: str | None = None, kind: str = "t") -> Settings:
    """``settings`` with a unique topic prefix and unique zone schemas."""
    tag = tag or kind + uuid.uuid4().hex[:8]
    data = settings.model_dump()
    data["kafka"]["topic_prefix"] = f"{tag}."
    data["pipeline"]["zones"] = {
        "raw": f"{tag}_raw",
        "staging": f"{tag}_staging",
        "curated": f"{tag}_curated",
        "operational": f"{tag}_ops",
    }
    return Settings(**data)


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}__{k.upper()}", v, out)
    elif value is None:
        return
    elif isinstance(value, SecretStr):  # a child needs the secret itself, not its mask
        out[prefix] = value.get_secret_value()
    elif isinstance(value, Enum):
        out[prefix] = str(value.value)
    elif isinstance(value, bool | int | float | str | Path):
        out[prefix] = str(value).lower() if isinstance(value, bool) else str(value)
    else:
        out[prefix] = json.dumps(value, default=str)


def child_env(settings: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment under which a child ``oddsflow`` process loads exactly ``settings``."""
    env = dict(os.environ if base is None else base)
    flat: dict[str, str] = {}
    for section, value in settings.model_dump().items():
        _flatten(f"ODDSFLOW_{section.upper()}", value, flat)
    env.update(flat)
    # DATABASE_URL ranks below the ODDSFLOW_ names but still names a server: a parent's must not
    # send a child whose settings mean a local server (the chaos run's private one) elsewhere
    if settings.postgres.url:
        env["DATABASE_URL"] = settings.postgres.url
    else:
        env.pop("DATABASE_URL", None)
    return env
