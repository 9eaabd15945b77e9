"""The schema catalog: every ``*.avsc``, current and historical, by name and fingerprint.

Current schemas live in ``schemas/avro/<zone>/<name>.avsc``. Every released version is kept in
``schemas/history/<full.name>/v<N>.avsc`` so a reader can resolve the writer's schema of a record
written months ago from the fingerprint in its single-object header.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

AVRO_DIR = Path(__file__).resolve().parent / "avro"
HISTORY_DIR = Path(__file__).resolve().parent / "history"


@dataclass(frozen=True)
class SchemaVersion:
    """One version of one schema."""

    name: str  # full name, e.g. oddsflow.staging.OddsLine
    version: int  # 0 = the working copy in schemas/avro not yet released to history
    path: Path
    raw: dict[str, Any]
    parsed: dict[str, Any]
    fingerprint: bytes  # CRC-64-AVRO of the parsing canonical form, little-endian

    @property
    def fingerprint_hex(self) -> str:
        return self.fingerprint.hex()


def _load(path: Path, version: int) -> SchemaVersion:
    raw = json.loads(path.read_text())
    parsed = parse_schema(raw, _write_hint=True)
    canonical = to_parsing_canonical_form(parsed)
    fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    name = parsed["name"]
    return SchemaVersion(name, version, path, raw, parsed, fp)


class SchemaRegistry:
    """Current schema per name, and every known version per fingerprint."""

    def __init__(self, avro_dir: Path = AVRO_DIR, history_dir: Path = HISTORY_DIR) -> None:
        self.avro_dir = avro_dir
        self.history_dir = history_dir
        self.current: dict[str, SchemaVersion] = {}
        self.history: dict[str, list[SchemaVersion]] = {}
        self.by_fingerprint: dict[bytes, SchemaVersion] = {}
        for path in sorted(history_dir.glob("*/v*.avsc")):
            sv = _load(path, int(path.stem[1:]))
            self.history.setdefault(sv.name, []).append(sv)
            self.by_fingerprint[sv.fingerprint] = sv
        for versions in self.history.values():
            versions.sort(key=lambda v: v.version)
        for path in sorted(avro_dir.glob("**/*.avsc")):
            sv = _load(path, 0)
            released = {v.fingerprint: v for v in self.history.get(sv.name, [])}
            sv = released.get(sv.fingerprint, sv)
            if sv.name in self.current:
                raise ValueError(f"schema {sv.name} is defined twice: {path}")
            self.current[sv.name] = sv
            self.by_fingerprint.setdefault(sv.fingerprint, sv)

    def get(self, name: str) -> SchemaVersion:
        try:
            return self.current[name]
        except KeyError:
            raise KeyError(f"no schema named {name!r}; known: {sorted(self.current)}") from None


@lru_cache(maxsize=1)
def default_registry() -> SchemaRegistry:
    return SchemaRegistry()
