"""``oddsflow dlq list|replay`` against the real broker: dead letters grouped as the processor
refused them, and a record refused for an unknown team promoted once the alias is known.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from core.admin import admin_client
from core.domain.teams import CODES, lookup_team
from core.settings import Settings
from core.topics import dlq_topic, raw_topic, topic_name
from oddsflow.cli import build_parser
from oddsflow.ops.dlq import REPLAY_OF, dead_letters, group, read_topic, replays_by_source
from oddsflow.processes import running_workers
from producers.publisher import Publisher
from producers.simulator import Simulator
from schemas.codec import default_codec
from streams.staging.processor import Origin, StagingProcessor
from streams.staging.reconcile import reconcile
from tests.fixtures_path import SBD_ONE
from tests.helpers import wait_for, workers

START = datetime(2026, 4, 3, 17, 0, tzinfo=UTC)
SBD_FETCHED = datetime(2025, 6, 13, 21, 10, tzinfo=UTC)
ENVELOPE = "oddsflow.raw.RawEnvelope"
UNKNOWN = "Gotham Knights"


def _envelope(source: str, event_id: str, payload: bytes, fetched: datetime) -> bytes:
    return default_codec().encoder(ENVELOPE)(
        {
            "event_id": event_id, "source": source, "fetched_at": fetched,
            "content_type": "application/json", "payload": payload, "request": {},
        }
    )  # fmt: skip


def _market() -> tuple[Simulator, list[tuple[str, str, bytes]], bytes]:
    """A small simulated market, and one of its events with an unknown home team."""
    sim = Simulator(seed=21, games=2, books=2, ticks=4, tick_seconds=30, start=START)
    good = [
        ("simulator", sim.key_of(eid), _envelope("simulator", eid, payload, fetched))
        for eid, payload, fetched in sim.envelopes()
    ]
    _eid, payload, fetched = next(iter(sim.envelopes()))
    event = json.loads(payload)
    event["home_team"] = UNKNOWN
    gotham = _envelope("simulator", "gotham-1", json.dumps(event).encode(), fetched)
    return sim, good, gotham


def _publish(s: Settings, inputs: list[tuple[str, str, bytes]]) -> None:
    pubs: dict[str, Publisher] = {}
    for source, key, value in inputs:
        pubs.setdefault(source, Publisher(s, source)).publish_encoded(key.encode(), value)
    for p in pubs.values():
        assert p.flush() == 0


def _refusals(inputs: list[tuple[str, str, bytes]], s: Settings) -> Counter[tuple[str, str]]:
    """(source, error class) of every dead letter the pure processor makes of ``inputs``, with
    the worker's quality gate (the SBD capture, fetched in 2025 and published now, is stale)."""
    processor = StagingProcessor(quality_threshold=s.pipeline.quality_threshold)
    decode = default_codec().decode
    out: Counter[tuple[str, str]] = Counter()
    for i, (source, _key, value) in enumerate(inputs):
        for dead in processor.process(Origin(f"raw.odds.{source}", 0, i, None), value).dead:
            out[(source, decode(dead)["error_class"])] += 1
    return out


def _dlq_count(s: Settings) -> int:
    return sum(1 for _ in read_topic(s, topic_name(s, dlq_topic("staging"))))


async def _cli(s: Settings, *argv: str) -> int:
    """The command as typed (it runs its own event loop: in a thread, as from a shell)."""
    args = build_parser().parse_args(["dlq", *argv])
    return await asyncio.to_thread(args.func, args, s)


async def test_list_groups_dead_letters_by_source_and_class(
    pipeline_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = pipeline_settings
    _sim, good, gotham = _market()
    sbd = ("sbd", "sbd-1", _envelope("sbd", "sbd-1", SBD_ONE.read_bytes(), SBD_FETCHED))
    inputs = [
        *good[:6], ("simulator", "gotham", gotham), ("simulator", "junk", b"\x00\xffjunk"),
        ("simulator", "empty", _envelope("simulator", "empty", b"", START)), sbd, *good[6:],
    ]  # fmt: skip
    expected = _refusals(inputs, s)
    assert len(expected) >= 4 and expected[("simulator", "unknown_team")] == 1
    _publish(s, inputs)

    async def count() -> int:
        return _dlq_count(s)

    with workers(s, ("staging",), tmp_path / "run"):
        await wait_for(count, lambda n: n >= expected.total(), timeout=90, what="dead letters")

    groups = group(await dead_letters(s), examples=2)
    assert {(g.source, g.error_class): g.count for g in groups} == dict(expected)
    assert all(g.stage == "staging" for g in groups)
    raw = {topic_name(s, raw_topic(src)) for src in ("simulator", "sbd")}
    for g in groups:
        assert g.example_origin.rsplit(":", 2)[0] in raw
        assert 1 <= len(g.examples) <= 2 and g.examples[0]["origin"] == g.example_origin
    assert [g.count for g in groups] == sorted((g.count for g in groups), reverse=True)

    only_sbd = await dead_letters(s, source="sbd")
    assert only_sbd and {d.source for d in only_sbd} == {"sbd"}
    assert {d.error_class for d in await dead_letters(s, error_classes=["unknown_team"])} == {
        "unknown_team"
    }

    assert await _cli(s, "list", "-n", "1") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"{expected.total()} dead letters in {len(expected)} groups"
    assert "unknown_team" in out and UNKNOWN in out
    assert await _cli(s, "list", "--source", "sbd", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert {(g["source"], g["error_class"]) for g in doc} == {k for k in expected if k[0] == "sbd"}

    # one SBD payload with several refused books: one raw record to re-inject, not one per book
    n_sbd = sum(n for (source, _c), n in expected.items() if source == "sbd")
    assert n_sbd > 1
    assert await _cli(s, "replay", "--source", "sbd", "--dry-run") == 0
    assert capsys.readouterr().out.startswith(
        f"{n_sbd} dead letters selected: would re-inject 1 records"
    )
    assert not await dead_letters(s, since=datetime.now(UTC) + timedelta(hours=1))
    recent = await dead_letters(s, since=datetime.now(UTC) - timedelta(hours=1))
    assert len(recent) == expected.total()
    [gotham_dl] = await dead_letters(s, match=UNKNOWN.upper())
    assert gotham_dl.error_class == "unknown_team"


def _fix(tmp_path: Path, code: str) -> dict[str, str]:
    """The "deployed fix": the unknown name becomes an alias, in the worker's process only."""
    fix = tmp_path / "fix"
    fix.mkdir()
    (fix / "sitecustomize.py").write_text(
        "import core.domain.teams as teams\n"
        f"teams._TABLE[teams.normalize({UNKNOWN!r})] = {code!r}\n"
    )
    path = os.pathsep.join(p for p in (str(fix), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path}


def _staged_games(s: Settings) -> set[str]:
    decode = default_codec().decode
    return {
        decode(m.value())["game_id"] for m in read_topic(s, topic_name(s, "staging.odds_lines"))
    }


async def test_replay_after_a_fix_promotes_the_record_and_the_zone_still_balances(
    pipeline_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = pipeline_settings
    sim, good, gotham = _market()
    inputs = [*good, ("simulator", "gotham", gotham), ("simulator", "junk", b"\x00junk")]
    _publish(s, inputs)

    async def count() -> int:
        return _dlq_count(s)

    with workers(s, ("staging",), tmp_path / "before"):
        await wait_for(count, lambda n: n >= 2, timeout=90, what="two dead letters")
    before = _staged_games(s)

    raw = topic_name(s, raw_topic("simulator"))
    assert await _cli(s, "replay", "--reason", "unknown_team", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "would re-inject 1 records" in out and f"{raw}:" in out
    assert sum(1 for _ in read_topic(s, raw)) == len(inputs)  # a dry run sends nothing

    used = {lookup_team(t) for g in sim.schedule for t in (g.home, g.away)}
    code = next(c for c in CODES if c not in used)
    with running_workers(s, ("staging",), tmp_path / "after", extra_env=_fix(tmp_path, code)):
        assert await _cli(s, "replay", "--reason", "unknown_team") == 0
        assert "re-injected 1 records" in capsys.readouterr().out

        async def new_games() -> set[str]:
            return _staged_games(s) - before

        games = await wait_for(new_games, bool, timeout=90, what="the replayed game promoted")
        assert all(f"@{code}-" in g for g in games), games

        async def rows() -> dict[str, dict]:
            return {r["source"]: r for r in reconcile(s)}

        balance = await wait_for(
            rows, lambda r: r.get("simulator", {}).get("balanced"), timeout=60, what="balance"
        )
    row = balance["simulator"]
    assert row["raw_in"] == len(inputs) + 1  # the replay is a delivery of its own...
    assert replays_by_source(s) == {"simulator": 1}  # ...and is counted as one
    assert row["raw_dead_lettered"] == 2  # the originals stay refused: both happened
    replayed = [m for m in read_topic(s, raw) if dict(m.headers() or ()).get(REPLAY_OF)]
    [msg] = replayed
    assert msg.value() == gotham and msg.key() == b"gotham"
    [refused] = await dead_letters(s, error_classes=["unknown_team"])
    assert dict(msg.headers())[REPLAY_OF].decode() == refused.origin

    assert await _cli(s, "replay", "--reason", "unknown_team") == 0  # nothing twice
    out = capsys.readouterr().out
    assert "re-injected 0 records" in out and "1 origins already replayed" in out


async def test_replay_of_a_refused_part_reads_its_raw_record_at_the_origin(
    pipeline_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused part's dead letter copies nothing (DeadLetter v2): replay re-injects the raw
    record read at its origin, and says why not once retention has removed it."""
    s = pipeline_settings
    _sim, good, _gotham = _market()
    _eid, payload, fetched = next(iter(_sim.envelopes()))
    event = json.loads(payload)
    event["bookmakers"][0]["markets"][0]["outcomes"][0]["price"] = -99  # one bad price
    bad = _envelope("simulator", "bad-price-1", json.dumps(event).encode(), fetched)
    inputs = [*good[:3], ("simulator", "bad-price", bad), *good[3:6]]
    _publish(s, inputs)

    async def count() -> int:
        return _dlq_count(s)

    with workers(s, ("staging",), tmp_path / "run"):
        await wait_for(count, lambda n: n >= 1, timeout=90, what="the refused part's dead letter")
    [dl] = await dead_letters(s)
    assert (dl.error_class, dl.original, dl.key) == ("price_out_of_range", None, b"bad-price")
    assert dl.part_index is not None and dl.part_index >= 1  # after the staged parts
    raw = topic_name(s, raw_topic("simulator"))
    [origin_msg] = [m for m in read_topic(s, raw) if m.key() == b"bad-price"]
    assert dl.origin == f"{raw}:{origin_msg.partition()}:{origin_msg.offset()}"

    assert await _cli(s, "replay", "--reason", "price_out_of_range") == 0
    assert "re-injected 1 records" in capsys.readouterr().out
    [replayed] = [m for m in read_topic(s, raw) if dict(m.headers() or ()).get(REPLAY_OF)]
    assert (replayed.value(), replayed.key()) == (bad, b"bad-price")  # the raw record, verbatim
    assert dict(replayed.headers())[REPLAY_OF].decode() == dl.origin

    # retention removes the raw record: nothing is sent, and the command says why
    tp = TopicPartition(raw, origin_msg.partition(), origin_msg.offset() + 1)
    admin = admin_client(s)  # must outlive its futures
    for future in admin.delete_records([tp]).values():
        future.result(timeout=30)
    assert await _cli(s, "replay", "--reason", "price_out_of_range", "--again") == 1
    out = capsys.readouterr().out
    assert "re-injected 0 records" in out
    assert f"1 raw records cannot be replayed:\n  {dl.origin}  the raw record is gone:" in out
    assert f"starts at offset {origin_msg.offset() + 1:,} now (retention removed it)" in out
    assert sum(1 for m in read_topic(s, raw) if dict(m.headers() or ()).get(REPLAY_OF)) == 1
