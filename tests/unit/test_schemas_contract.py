"""The .avsc files follow the topic-contract conventions (self-contained, documented, typed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastavro
import pytest

from core.topics import CATALOG, Zone
from schemas.registry import AVRO_DIR

FILES = sorted(AVRO_DIR.glob("*/*.avsc"))
TIMESTAMP_FIELDS = {
    "commence_time", "event_time", "ingested_at", "fetched_at", "failed_at", "detected_at",
    "first_move_at", "window_start", "emitted_at", "at",
}  # fmt: skip


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_every_catalog_schema_has_a_file_in_its_zone() -> None:
    by_name = {f"{load(p)['namespace']}.{load(p)['name']}": p for p in FILES}
    for topic in CATALOG:
        path = by_name[topic.schema]
        assert path.parent.name == topic.zone.value
        assert topic.schema.startswith(f"oddsflow.{topic.zone.value}.")
    assert {t.zone for t in CATALOG} == set(Zone)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_schema_file_conventions(path: Path) -> None:
    schema = load(path)
    assert schema["type"] == "record"
    assert schema["namespace"] == f"oddsflow.{path.parent.name}"
    assert schema["doc"]
    fastavro.parse_schema(schema)  # self-contained: parses alone, no other file needed
    for field in schema["fields"]:
        assert field.get("doc"), f"{field['name']} has no doc"
        ftype = field["type"]
        if isinstance(ftype, list):
            assert ftype[0] == "null" and len(ftype) == 2, field["name"]
            assert "default" in field and field["default"] is None, field["name"]
        if field["name"] in TIMESTAMP_FIELDS:
            assert ftype == {"type": "long", "logicalType": "timestamp-micros"}, field["name"]
        if field["name"] in ("market", "side", "direction"):
            assert ftype["type"] == "enum"
            assert ftype.get("namespace", schema["namespace"]) == "oddsflow.staging"
        if field["name"] == "unit":
            enum = ftype[1] if isinstance(ftype, list) else ftype
            assert enum["symbols"] == ["cents", "points"]
            assert enum.get("namespace", schema["namespace"]) == "oddsflow.curated"


def test_units_are_documented() -> None:
    docs = {(load(p)["name"], f["name"]): f["doc"] for p in FILES for f in load(p)["fields"]}
    assert "percent, 0..100" in docs[("BettingSplit", "bets_pct")]
    assert "probability, 0..1" in docs[("Consensus", "median_novig_prob")]
    assert "points" in docs[("Consensus", "median_line")]
    assert "0..1" in docs[("SteamMove", "confidence")]
    assert "cents or points" in docs[("SharpSignal", "line_move")]
