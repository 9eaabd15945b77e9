"""BACKWARD compatibility checker, release history, and reading old records with a new schema."""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from core.topics import CATALOG
from oddsflow.ops.schema_check import cli_check, cli_list
from schemas import evolution
from schemas.codec import Codec
from schemas.evolution import check_all, check_backward, check_registry, list_schemas, release
from schemas.registry import AVRO_DIR, HISTORY_DIR, SchemaRegistry

UTC = dt.UTC

V1: dict[str, Any] = {
    "type": "record",
    "name": "Thing",
    "namespace": "oddsflow.test",
    "doc": "test",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "count", "type": "int"},
        {"name": "raw", "type": "string"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["a", "b", "c"]}},
        {"name": "tags", "type": {"type": "array", "items": "int"}},
        {"name": "attrs", "type": {"type": "map", "values": "float"}},
        {"name": "maybe", "type": ["null", "int"], "default": None},
        {
            "name": "inner",
            "type": {
                "type": "record",
                "name": "Inner",
                "fields": [{"name": "x", "type": "long"}],
            },
        },
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    ],
}


def changed(**edits: Any) -> dict[str, Any]:
    """V1 with fields replaced (value dict), removed (None) or added (new name)."""
    s = copy.deepcopy(V1)
    names = [f["name"] for f in s["fields"]]
    for name, field in edits.items():
        if name in names:
            i = names.index(name)
            if field is None:
                s["fields"][i] = None
            else:
                s["fields"][i] = {"name": name, **field}
        else:
            s["fields"].append({"name": name, **field})
    s["fields"] = [f for f in s["fields"] if f is not None]
    return s


def problems(reader: dict[str, Any], writer: dict[str, Any] = V1) -> list[str]:
    return [str(p) for p in check_backward(reader, writer)]


@pytest.mark.parametrize(
    "reader",
    [
        V1,
        changed(extra={"type": ["null", "string"], "default": None}),
        changed(extra={"type": "int", "default": 0}),
        changed(raw=None),
        changed(count={"type": "long"}),
        changed(count={"type": "double"}),
        changed(raw={"type": "bytes"}),
        changed(tags={"type": {"type": "array", "items": "long"}}),
        changed(attrs={"type": {"type": "map", "values": "double"}}),
        changed(maybe={"type": ["null", "long"], "default": None}),
        changed(count={"type": ["null", "int"], "default": None}),
        changed(kind={"type": {"type": "enum", "name": "Kind", "symbols": ["a", "b", "c", "d"]}}),
        changed(kind={"type": {"type": "enum", "name": "Kind", "symbols": ["a"], "default": "a"}}),
        changed(
            inner={
                "type": {
                    "type": "record",
                    "name": "Inner",
                    "fields": [
                        {"name": "x", "type": "double"},
                        {"name": "y", "type": "string", "default": ""},
                    ],
                }
            }
        ),
        changed(at={"type": "long"}),
    ],
    ids=lambda s: ",".join(f["name"] for f in s["fields"])[-40:],
)
def test_compatible_changes(reader: dict[str, Any]) -> None:
    assert problems(reader) == []


@pytest.mark.parametrize(
    ("reader", "path", "words"),
    [
        (changed(extra={"type": "string"}), "extra", "added without a default"),
        (changed(count={"type": "string"}), "count", "from int to string"),
        (changed(count={"type": "boolean"}), "count", "from int to boolean"),
        (changed(at={"type": "int"}), "at", "from long to int"),
        (changed(raw={"type": "int"}), "raw", "from string to int"),
        (
            changed(kind={"type": {"type": "enum", "name": "Kind", "symbols": ["a", "b"]}}),
            "kind",
            "removed symbols ['c']",
        ),
        (
            changed(kind={"type": {"type": "enum", "name": "Other", "symbols": ["a", "b", "c"]}}),
            "kind",
            "renamed",
        ),
        (changed(tags={"type": {"type": "array", "items": "string"}}), "tags[]", "int to string"),
        (changed(attrs={"type": {"type": "map", "values": "int"}}), "attrs{}", "float to int"),
        (changed(maybe={"type": "int"}), "maybe", "writer union branch 0"),
        (changed(count={"type": ["null", "string"]}), "count", "matches no branch"),
        (
            changed(
                inner={
                    "type": {
                        "type": "record",
                        "name": "Inner",
                        "fields": [{"name": "x", "type": "long"}, {"name": "y", "type": "int"}],
                    }
                }
            ),
            "inner.y",
            "added without a default",
        ),
        (
            changed(
                inner={
                    "type": {
                        "type": "record",
                        "name": "Inner",
                        "fields": [{"name": "x", "type": "int"}],
                    }
                }
            ),
            "inner.x",
            "from long to int",
        ),
        (changed(tags={"type": "int"}), "tags", "array to int"),
    ],
)
def test_incompatible_changes_name_the_field(reader: dict[str, Any], path: str, words: str) -> None:
    found = problems(reader)
    assert len(found) == 1, found
    assert found[0].startswith(f"{path}: "), found
    assert words in found[0], found


def test_removed_enum_symbol_in_nested_union_is_found() -> None:
    writer = changed(maybe_kind={"type": ["null", "oddsflow.test.Kind"], "default": None})
    reader = changed(
        kind={"type": {"type": "enum", "name": "Kind", "symbols": ["a", "b"]}},
        maybe_kind={"type": ["null", "oddsflow.test.Kind"], "default": None},
    )
    found = problems(reader, writer)
    assert [p.split(":")[0] for p in found] == ["kind", "maybe_kind"]


# --- a test-only schema with two releases in a temporary catalog ----------------------------


def make_catalog(tmp_path: Path, versions: list[dict[str, Any]], current: dict[str, Any]) -> Path:
    avro, history = tmp_path / "avro", tmp_path / "history"
    (avro / "test").mkdir(parents=True)
    (avro / "test" / "thing.avsc").write_text(json.dumps(current))
    for i, v in enumerate(versions, start=1):
        folder = history / "oddsflow.test.Thing"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"v{i}.avsc").write_text(json.dumps(v))
    return tmp_path


def load(root: Path) -> SchemaRegistry:
    return SchemaRegistry(root / "avro", root / "history")


V2 = changed(
    count={"type": "long"},
    raw=None,
    note={"type": "string", "default": "none"},
    maybe={"type": ["null", "double"], "default": None},
)
RECORD_V1 = {
    "id": "t-1",
    "count": 7,
    "raw": "dropped later",
    "kind": "b",
    "tags": [1, 2],
    "attrs": {"a": 0.5},
    "maybe": 3,
    "inner": {"x": 9},
    "at": dt.datetime(2024, 4, 3, 17, 5, tzinfo=UTC),
}


def test_record_written_with_v1_is_read_by_v2(tmp_path: Path) -> None:
    root = make_catalog(tmp_path, [V1, V2], V2)
    registry = SchemaRegistry(root / "avro", root / "history")
    assert check_registry(registry) == []
    v1 = registry.history["oddsflow.test.Thing"][0]
    assert registry.current["oddsflow.test.Thing"].version == 2
    # a producer still on v1: encode with v1's schema and fingerprint
    old_codec = Codec(SchemaRegistry(make_catalog(tmp_path / "old", [V1], V1) / "avro", root / "x"))
    data = old_codec.encode("oddsflow.test.Thing", RECORD_V1)
    assert data[2:10] == v1.fingerprint
    codec = Codec(registry)
    as_v2 = codec.decode(data, reader="oddsflow.test.Thing")
    expected = {k: v for k, v in RECORD_V1.items() if k != "raw"}
    assert as_v2 == {**expected, "note": "none", "maybe": 3.0}
    assert isinstance(as_v2["maybe"], float)
    assert codec.decode(data) == RECORD_V1  # without a reader: as written
    # and the current version round-trips through the generated codec
    new = codec.encode("oddsflow.test.Thing", as_v2)
    assert codec.decode(new, reader="oddsflow.test.Thing") == as_v2


def test_incompatible_working_copy_and_history_are_reported(tmp_path: Path) -> None:
    bad = changed(count={"type": "string"})
    registry = load(make_catalog(tmp_path, [V1], bad))
    assert check_registry(registry) == [
        "oddsflow.test.Thing: working copy cannot read v1: count: "
        "type changed from int to string: not a promotion"
    ]
    other = tmp_path / "h"
    registry = load(make_catalog(other, [V1, bad], bad))
    found = check_registry(registry)
    assert found == [
        "oddsflow.test.Thing: v2 cannot read v1: count: "
        "type changed from int to string: not a promotion"
    ]


def test_release_and_edited_release_detection(tmp_path: Path) -> None:
    root = make_catalog(tmp_path, [], V1)
    registry = SchemaRegistry(root / "avro", root / "history")
    assert check_registry(registry) == [
        "oddsflow.test.Thing: not released (no oddsflow.test.Thing/v1.avsc in history)"
    ]
    path = release("oddsflow.test.Thing", registry)
    assert path == root / "history" / "oddsflow.test.Thing" / "v1.avsc"
    registry = SchemaRegistry(root / "avro", root / "history")
    lock = evolution.load_lock(root / "history" / "fingerprints.json")
    fp = registry.current["oddsflow.test.Thing"].fingerprint_hex
    assert lock == {"oddsflow.test.Thing/v1": fp}
    assert check_registry(registry, lock) == []
    # editing a released file is caught by the fingerprint lock
    path.write_text(json.dumps(changed(count={"type": "long"})))
    registry = SchemaRegistry(root / "avro", root / "history")
    found = check_registry(registry, lock)
    assert any("v1: released version was edited" in p for p in found), found
    # release refuses an incompatible change
    (root / "avro" / "test" / "thing.avsc").write_text(
        json.dumps(changed(count={"type": "string"}))
    )
    with pytest.raises(ValueError, match="count"):
        release("oddsflow.test.Thing", SchemaRegistry(root / "avro", root / "history"))


def test_project_schemas_are_released_and_consistent() -> None:
    assert check_all(CATALOG) == []
    lock = evolution.load_lock()
    registry = SchemaRegistry()
    assert sorted(lock) == sorted(
        f"{n}/v{v.version}" for n, versions in registry.history.items() for v in versions
    )
    for name, sv in registry.current.items():  # every working copy is its latest release
        assert sv.version == len(registry.history[name]) >= 1
        assert lock[f"{name}/v{sv.version}"] == sv.fingerprint_hex
        released = HISTORY_DIR / name / f"v{sv.version}.avsc"
        assert json.loads(released.read_text()) == sv.raw
    # DeadLetter v2: original nullable (a refused part points at its raw record), part_index
    assert registry.current["oddsflow.operational.DeadLetter"].version == 2


def test_list_schemas_rows() -> None:
    rows = list_schemas(CATALOG)
    assert [r["topic"] for r in rows] == [t.name for t in CATALOG]
    row = next(r for r in rows if r["topic"] == "staging.odds_lines")
    assert row["schema"] == "oddsflow.staging.OddsLine"
    assert row["version"] == 1
    assert row["fingerprint"] == SchemaRegistry().get("oddsflow.staging.OddsLine").fingerprint_hex


def test_cli_functions(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_check() == 0
    assert "schemas ok" in capsys.readouterr().out
    assert cli_list(as_json=True) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == list_schemas(CATALOG)
    assert cli_list(as_json=False) == 0
    out = capsys.readouterr().out
    assert "staging.odds_lines" in out and "oddsflow.staging.OddsLine" in out


def test_cli_check_fails_on_a_broken_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(AVRO_DIR, tmp_path / "avro")
    shutil.copytree(HISTORY_DIR, tmp_path / "history")
    odds = tmp_path / "avro" / "staging" / "odds_line.avsc"
    schema = json.loads(odds.read_text())
    schema["fields"].append({"name": "vig", "type": "double", "doc": "no default"})
    odds.write_text(json.dumps(schema))
    broken = SchemaRegistry(tmp_path / "avro", tmp_path / "history")
    monkeypatch.setattr(evolution, "default_registry", lambda: broken)
    assert cli_check() == 1
    err = capsys.readouterr().err
    assert (
        "oddsflow.staging.OddsLine: working copy cannot read v1: vig: field added without a default"
        in err
    )
