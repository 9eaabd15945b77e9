"""Reconciliation: every raw record of a simulator run with poison mixed in is accounted for.

The expected balance comes from the same records through the pure processor and de-duplicator,
in publish order (one game's records are on one partition, in order, end to end).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from producers.publisher import Publisher
from producers.simulator import Simulator
from schemas.codec import default_codec
from streams.staging.dedupe import PartitionState, decode_fact
from streams.staging.processor import Origin, StagingProcessor
from streams.staging.reconcile import reconcile
from tests.fixtures_path import SBD_ONE
from tests.helpers import wait_for, workers

START = datetime(2026, 4, 3, 17, 0, tzinfo=UTC)
ENVELOPE = "oddsflow.raw.RawEnvelope"


def _envelope(source: str, event_id: str, payload: bytes, fetched: datetime) -> bytes:
    return default_codec().encoder(ENVELOPE)(
        {
            "event_id": event_id, "source": source, "fetched_at": fetched,
            "content_type": "application/json", "payload": payload, "request": {},
        }
    )  # fmt: skip


def _inputs() -> list[tuple[str, str, bytes]]:
    """(source, key, raw bytes) in publish order: a market, poison, redeliveries, an SBD file."""
    sim = Simulator(seed=4, games=2, books=3, ticks=12, tick_seconds=30, start=START)
    good = [
        ("simulator", sim.key_of(eid), _envelope("simulator", eid, payload, fetched))
        for eid, payload, fetched in sim.envelopes()
    ]
    _eid, payload, fetched = next(iter(sim.envelopes()))
    event = json.loads(payload)
    event["home_team"] = "Gotham Knights"
    unknown_team = json.dumps(event).encode()
    line = default_codec().encoder("oddsflow.staging.OddsLine")
    wrong_schema = line(
        {
            "game_id": "MLB-20260403-STL@PIT-1", "commence_time": START, "home_team": "PIT",
            "away_team": "STL", "book": "pinnacle", "market": "moneyline", "side": "home",
            "line": None, "price_american": -110, "price_decimal": 1.91, "implied_prob": 0.52,
            "novig_prob": 0.5, "event_time": START, "ingested_at": START, "source": "simulator",
            "source_event_id": "x",
        }
    )  # fmt: skip
    poison = [
        ("simulator", "poison-1", b"\x00\xffnot avro at all"),
        ("simulator", "poison-2", wrong_schema),
        ("simulator", "poison-3", good[0][2][:25]),  # truncated Avro
        ("simulator", "poison-4", _envelope("simulator", "gotham", unknown_team, fetched)),
        ("simulator", "poison-5", _envelope("simulator", "empty", b"", fetched)),
    ]
    # the SBD capture as a poll of a minute ago: the quality gate judges the delay from fetch to
    # publish, and a capture fetched in 2025 and published now would be quarantined whole
    polled = datetime.now(UTC) - timedelta(minutes=1)
    sbd = [("sbd", "sbd-1", _envelope("sbd", "sbd-1", SBD_ONE.read_bytes(), polled))]
    redelivered = good[:5]  # a collector retry re-sends what the broker already had
    return good[:30] + poison + sbd + good[30:] + redelivered


def _expected(inputs: list[tuple[str, str, bytes]], threshold: float) -> dict[str, Counter]:
    """The balance the worker should reach: the pure processor with its quality gate, and the
    event-time de-dup in publish order (the redelivered records at the end are more than the
    lateness older than their games' newest: late)."""
    processor = StagingProcessor(quality_threshold=threshold)
    state = PartitionState()
    out: dict[str, Counter] = {}
    for i, (source, _key, value) in enumerate(inputs):
        result = processor.process(Origin(f"raw.odds.{source}", 0, i, None), value)
        fates = Counter(state.decide(decode_fact(f)).fate for f in result.facts)
        emitted = sum(n for fate, n in fates.items() if fate not in ("unchanged", "late"))
        c = out.setdefault(source, Counter())
        c["raw_in"] += 1
        c["parts"] += len(result.records) + len(result.dead)
        c["promoted"] += emitted
        c["unchanged"] += fates["unchanged"]
        c["late"] += fates["late"]
        c["dead_lettered"] += len(result.dead)
        if emitted:
            kind = "promoted"
        elif fates["unchanged"]:
            kind = "unchanged"
        elif fates["late"]:
            kind = "late"
        else:
            kind = "dead_lettered"
        c[f"raw_{kind}"] += 1
    return out


async def test_reconciliation_accounts_for_every_raw_record(pipeline_settings, tmp_path: Path):
    s = pipeline_settings
    inputs = _inputs()
    publishers = {src: Publisher(s, src) for src in ("simulator", "sbd")}
    for source, key, value in inputs:
        publishers[source].publish_encoded(key.encode(), value)
    for p in publishers.values():
        assert p.flush() == 0
    expected = _expected(inputs, s.pipeline.quality_threshold)
    sim = expected["simulator"]
    assert sim["raw_dead_lettered"] == 5 and sim["raw_unchanged"] >= 5
    assert expected["sbd"]["dead_lettered"] > 0 and expected["sbd"]["raw_promoted"] == 1

    async def rows() -> dict[str, dict]:
        return {r["source"]: r for r in reconcile(s)}

    with workers(s, ("staging",), tmp_path / "run"):
        got = await wait_for(
            rows,
            lambda r: (
                all(r.get(src, {}).get("balanced") for src in expected)
                and sum(r[src]["parts"] for src in expected)
                == sum(e["parts"] for e in expected.values())
            ),
            timeout=90,
            what="a balanced reconciliation",
        )
    for source, want in expected.items():
        row = got[source]
        assert row["raw_unexplained"] == 0 and row["raw_pending"] == 0
        assert row["raw_empty"] == 0
        assert row["raw_in"] == (
            row["raw_promoted"] + row["raw_unchanged"] + row["raw_late"] + row["raw_dead_lettered"]
        )
        assert {k: row[k] for k in want} == dict(want), source
    assert set(got) == {"simulator", "sbd"}
