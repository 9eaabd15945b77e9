"""Schema evolution rules: BACKWARD compatibility and the history of released versions.

BACKWARD: a consumer with the new schema (reader) reads records written with the previous one
(writer), per Avro schema resolution. That is the order in which we deploy: consumers first,
then producers, and the topics keep old records for replays.

Rules, checked recursively through records, arrays, maps and unions:
- a field added in the reader needs a default; a removed field is fine;
- a type may change only by Avro promotion: int -> long -> float -> double, string <-> bytes;
- an enum may lose symbols only if the reader enum has a default;
- a writer union: every branch must be readable; a reader union: the writer type must match a
  branch; named types must keep their name (or list the old one in ``aliases``);
- fixed sizes must match.

Release discipline: ``schemas/history/<full.name>/v<N>.avsc`` are released versions, never edited
(their fingerprints are what old records carry); consecutive versions must be compatible, and a
working copy in ``schemas/avro`` that differs from the latest release must be compatible with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, Protocol

from fastavro import parse_schema

from schemas.registry import HISTORY_DIR, SchemaRegistry, SchemaVersion, default_registry


class TopicSchema(Protocol):
    """A topic of the catalog as the checks see it (core.topics.TopicSpec is one): its name and the
    full name of its value schema. The catalog lives a floor above; it is passed in."""

    @property
    def name(self) -> str: ...

    @property
    def schema(self) -> str: ...


PROMOTIONS: dict[str, set[str]] = {  # writer type -> reader types that can read it
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "double": {"double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
    "boolean": {"boolean"},
    "null": {"null"},
}
NAMED = ("record", "error", "enum", "fixed")


@dataclass(frozen=True)
class Problem:
    """One incompatibility: where (field path) and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.reason}"


def _named_types(schema: Any, out: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    if isinstance(schema, list):
        for s in schema:
            _named_types(s, out)
    elif isinstance(schema, dict):
        t = schema.get("type")
        if t in NAMED and "name" in schema:
            out.setdefault(schema["name"], schema)
        if t in ("record", "error"):
            for f in schema.get("fields", []):
                _named_types(f["type"], out)
        elif t == "array":
            _named_types(schema["items"], out)
        elif t == "map":
            _named_types(schema["values"], out)
        elif isinstance(t, dict | list):
            _named_types(t, out)
    return out


class _Checker:
    def __init__(self, reader: Any, writer: Any) -> None:
        self.rnamed = _named_types(reader, {})
        self.wnamed = _named_types(writer, {})
        self.seen: set[tuple[str, str]] = set()

    def _res(self, s: Any, named: dict[str, dict[str, Any]]) -> Any:
        while True:
            if isinstance(s, str) and s in named:
                return named[s]
            if (
                isinstance(s, dict)
                and not s.get("logicalType")
                and isinstance(s.get("type"), dict | list)
            ):
                s = s["type"]
                continue
            if isinstance(s, dict) and s.get("type") in PROMOTIONS and len(s) == 1:
                return s["type"]
            return s

    @staticmethod
    def _type(s: Any) -> str:
        if isinstance(s, list):
            return "union"
        if isinstance(s, str):
            return s
        t = s["type"]
        return t if isinstance(t, str) else "union"

    @staticmethod
    def _describe(s: Any) -> str:
        if isinstance(s, list):
            return "union"
        if isinstance(s, str):
            return s
        t = s["type"]
        return f"{t} {s['name']}" if t in NAMED else str(t)

    def check(self, r: Any, w: Any, path: str) -> list[Problem]:
        r, w = self._res(r, self.rnamed), self._res(w, self.wnamed)
        rt, wt = self._type(r), self._type(w)
        if wt == "union":
            out: list[Problem] = []
            for i, branch in enumerate(w):
                for p in self.check(r, branch, path):
                    out.append(Problem(p.path, f"writer union branch {i}: {p.reason}"))
            return out
        if rt == "union":
            for branch in r:
                if not self.check(branch, w, path):
                    return []
            return [
                Problem(
                    path,
                    f"writer type {self._describe(w)} matches no branch of the reader union "
                    f"[{', '.join(self._describe(self._res(b, self.rnamed)) for b in r)}]",
                )
            ]
        if wt in PROMOTIONS:
            if rt not in PROMOTIONS[wt]:
                return [
                    Problem(path, f"type changed from {wt} to {self._describe(r)}: not a promotion")
                ]
            return []
        if rt != wt:
            return [Problem(path, f"type changed from {self._describe(w)} to {self._describe(r)}")]
        if wt in NAMED and not self._same_name(r, w):
            return [Problem(path, f"named type renamed from {w['name']} to {r['name']}")]
        if wt == "array":
            return self.check(r["items"], w["items"], f"{path}[]")
        if wt == "map":
            return self.check(r["values"], w["values"], f"{path}{{}}")
        if wt == "fixed":
            if r["size"] != w["size"]:
                return [Problem(path, f"fixed size changed from {w['size']} to {r['size']}")]
            return []
        if wt == "enum":
            removed = [s for s in w["symbols"] if s not in r["symbols"]]
            if removed and "default" not in r:
                return [
                    Problem(
                        path,
                        f"enum {r['name']} removed symbols {removed} and has no default",
                    )
                ]
            return []
        if wt in ("record", "error"):
            return self._record(r, w, path)
        return [Problem(path, f"unsupported type {wt}")]

    @staticmethod
    def _same_name(r: dict[str, Any], w: dict[str, Any]) -> bool:
        if r["name"] == w["name"]:
            return True
        short = w["name"].rsplit(".", 1)[-1]
        return any(a in (w["name"], short) or a.endswith("." + short) for a in r.get("aliases", []))

    def _record(self, r: dict[str, Any], w: dict[str, Any], path: str) -> list[Problem]:
        key = (r["name"], w["name"])
        if key in self.seen:  # recursive types: assume the recursion is fine
            return []
        self.seen.add(key)
        wfields = {f["name"]: f for f in w["fields"]}
        for f in w["fields"]:
            for alias in f.get("aliases", []):
                wfields.setdefault(alias, f)
        out: list[Problem] = []
        for f in r["fields"]:
            fpath = f"{path}.{f['name']}" if path else f["name"]
            wf = wfields.get(f["name"])
            if wf is None:
                for alias in f.get("aliases", []):
                    wf = wf or wfields.get(alias)
            if wf is None:
                if "default" not in f:
                    out.append(Problem(fpath, "field added without a default"))
                continue
            out.extend(self.check(f["type"], wf["type"], fpath))
        return out


def _parsed(schema: Any) -> Any:
    return (
        parse_schema(schema, _write_hint=True, _force=True) if isinstance(schema, dict) else schema
    )


def check_backward(reader: Any, writer: Any) -> list[Problem]:
    """Problems reading data written with ``writer`` using ``reader`` (empty = compatible).

    Both are schemas as JSON (dicts) or parsed by fastavro.
    """
    r, w = _parsed(reader), _parsed(writer)
    return _Checker(r, w).check(r, w, "")


def check_backward_files(reader: Path, writer: Path) -> list[Problem]:
    """``check_backward`` of two ``.avsc`` files."""
    return check_backward(json.loads(reader.read_text()), json.loads(writer.read_text()))


def _history_problems(registry: SchemaRegistry) -> list[str]:
    out: list[str] = []
    for name, versions in sorted(registry.history.items()):
        numbers = [v.version for v in versions]
        if numbers != list(range(1, len(numbers) + 1)):
            out.append(f"{name}: released versions {numbers} are not v1..v{len(numbers)}")
        for older, newer in pairwise(versions):
            if newer.fingerprint == older.fingerprint:
                out.append(f"{name}: v{newer.version} is identical to v{older.version}")
            for p in check_backward(newer.parsed, older.parsed):
                out.append(f"{name}: v{newer.version} cannot read v{older.version}: {p}")
    return out


def _lock_problems(registry: SchemaRegistry, lock: dict[str, str]) -> list[str]:
    """Released files whose fingerprint differs from the one recorded at release."""
    out: list[str] = []
    for versions in registry.history.values():
        for v in versions:
            key = f"{v.name}/v{v.version}"
            recorded = lock.get(key)
            if recorded is None:
                out.append(f"{key}: released version missing from the fingerprint lock")
            elif recorded != v.fingerprint_hex:
                out.append(
                    f"{key}: released version was edited (fingerprint {v.fingerprint_hex}, "
                    f"released as {recorded}); add a new version instead"
                )
    return out


def latest_release(registry: SchemaRegistry, name: str) -> SchemaVersion | None:
    versions = registry.history.get(name, [])
    return versions[-1] if versions else None


def check_registry(registry: SchemaRegistry, lock: dict[str, str] | None = None) -> list[str]:
    """Every evolution problem of a registry, as readable lines naming schema and field."""
    out = _history_problems(registry)
    if lock is not None:
        out.extend(_lock_problems(registry, lock))
    for name, current in sorted(registry.current.items()):
        latest = latest_release(registry, name)
        if latest is None:
            out.append(f"{name}: not released (no {name}/v1.avsc in history)")
            continue
        if current.version:  # identical to a released version
            if current.version != latest.version:
                out.append(
                    f"{name}: working copy equals v{current.version}, older than v{latest.version}"
                )
            continue
        for p in check_backward(current.parsed, latest.parsed):
            out.append(f"{name}: working copy cannot read v{latest.version}: {p}")
    return out


def load_lock(path: Path = HISTORY_DIR / "fingerprints.json") -> dict[str, str]:
    """``{"<full.name>/v<N>": fingerprint hex}`` recorded when each version was released."""
    return json.loads(path.read_text()) if path.exists() else {}


def check_all(topics: Iterable[TopicSchema], registry: SchemaRegistry | None = None) -> list[str]:
    """All problems of the project's schemas (empty list = fine): history, lock, working copies,
    and every topic of ``topics`` (the catalog, core.topics.CATALOG) naming a known schema."""
    registry = registry or default_registry()
    out = check_registry(registry, load_lock(registry.history_dir / "fingerprints.json"))
    for t in topics:
        if t.schema not in registry.current:
            out.append(f"topic {t.name}: schema {t.schema} has no .avsc")
    return out


def release(name: str, registry: SchemaRegistry | None = None) -> Path:
    """Copy the working copy of ``name`` to history as the next version and lock its fingerprint.

    Refuses an incompatible working copy. Used when a schema change is merged.
    """
    registry = registry or default_registry()
    current = registry.get(name)
    latest = latest_release(registry, name)
    if latest is not None and current.fingerprint == latest.fingerprint:
        return latest.path
    if latest is not None:
        problems = check_backward(current.parsed, latest.parsed)
        if problems:
            raise ValueError(f"{name} is not backward compatible: {'; '.join(map(str, problems))}")
    version = 1 if latest is None else latest.version + 1
    target = registry.history_dir / name / f"v{version}.avsc"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(current.path.read_text())
    lock_path = registry.history_dir / "fingerprints.json"
    lock = load_lock(lock_path)
    lock[f"{name}/v{version}"] = current.fingerprint_hex
    lock_path.write_text(json.dumps(dict(sorted(lock.items())), indent=2) + "\n")
    return target


def list_schemas(
    topics: Iterable[TopicSchema], registry: SchemaRegistry | None = None
) -> list[dict[str, Any]]:
    """One row per topic of ``topics``: topic, schema name, version (0 = unreleased edit),
    fingerprint."""
    registry = registry or default_registry()
    rows: list[dict[str, Any]] = []
    for t in topics:
        sv = registry.current.get(t.schema)
        rows.append(
            {
                "topic": t.name,
                "schema": t.schema,
                "version": sv.version if sv else None,
                "fingerprint": sv.fingerprint_hex if sv else None,
            }
        )
    return rows
