"""``oddsflow dlq list|replay``: dead letters by reason, and re-injected after a fix.

Where each stage's dead letters are: the staging worker writes its refusals (undecodable
envelopes, unparseable payloads, refused books and sides) to the topic ``dlq.staging``, the
system of record (the sink copies it into ``<operational>.dead_letters``); the features worker
refuses nothing today (``dlq.features`` is read all the same); the sink's own refusals (records it
cannot decode, rows the database refuses) go only to the table, with stage ``sink``. So ``list``
reads the DLQ topics, plus the table's ``sink`` rows when the database answers.

Replay re-injects each selected dead letter's raw record and key into its origin topic (a raw
topic for staging), once per origin: a payload with three refused books is one raw record, sent
once. A whole-record failure carries the record's bytes (``original``); a refused part of a
payload (DeadLetter v2: ``original`` null, ``part_index`` set) and a record too large to copy
point at the raw record instead, and replay reads its bytes there (topic, partition, offset). When
the raw topic no longer holds it (retention), replay says so for that origin, sends the others
and exits 1. Each re-injected record carries the header ``oddsflow-replay-of`` = the origin
``topic:partition:offset`` (and ``oddsflow-replay-class``), and origins that already have a
replay on their topic are skipped unless ``--again``.

Accounting: a replay is a new delivery on the raw topic. The reconciliation counts it as raw
input with its own balance (promoted after the fix, de-duplicated, or dead-lettered again) and
keeps its original counted as dead-lettered — both happened, so every source still balances;
distinct collected records are ``raw in - replays`` (``oddsflow pipeline quality`` prints the
replays). The raw table keeps one row per envelope (its key is source and event id), and the
quality reports count the replay in the minute it is processed. Sink dead letters are not
replayed this way (their origin topics have other consumers): fix the cause and reset the sink
with ``oddsflow replay --zone ... --group sink``.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from confluent_kafka import (
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

from core.argtypes import moment, non_negative_int
from core.kafka_config import consumer_config, producer_config
from core.offsets import watermark
from core.reader import read_topic
from core.settings import Settings
from core.topics import DLQ_STAGES, RAW_SOURCES, dlq_topic, raw_topic, topic_name
from oddsflow.console import render, table
from oddsflow.errors import shorten
from oddsflow.jsonout import emit, iso
from schemas.codec import DecodeError, default_codec

REPLAY_OF = "oddsflow-replay-of"
REPLAY_CLASS = "oddsflow-replay-class"
DEAD_LETTER = "oddsflow.operational.DeadLetter"
REPLAYABLE = ("staging", "features")


@dataclass(slots=True)
class DeadLetter:
    stage: str
    source: str  # the raw source for staging; the origin topic otherwise
    origin_topic: str
    origin_partition: int
    origin_offset: int
    key: bytes | None
    original: bytes | None  # None: the dead letter points at its raw record (origin)
    error_class: str
    reason: str
    failed_at: datetime
    part_index: int | None = None  # a refused part of the raw record; None: the whole record

    @property
    def origin(self) -> str:
        return f"{self.origin_topic}:{self.origin_partition}:{self.origin_offset}"


def _source_of(settings: Settings, origin_topic: str) -> str:
    logical = origin_topic.removeprefix(settings.kafka.topic_prefix)
    return logical.removeprefix("raw.odds.") if logical.startswith("raw.odds.") else logical


def _from_topics(
    settings: Settings, stages: tuple[str, ...], since: datetime | None
) -> list[DeadLetter]:
    decode = default_codec().decode
    out = []
    # a dead letter is written when it fails: read from a minute before ``since`` (clock skew)
    start = since - timedelta(minutes=1) if since else None
    for stage in stages:
        for msg in read_topic(settings, topic_name(settings, dlq_topic(stage)), start):
            try:
                r = decode(msg.value() or b"", reader=DEAD_LETTER)
            except DecodeError:
                continue  # not a dead letter: nothing to list or replay
            out.append(
                DeadLetter(
                    r["stage"], _source_of(settings, r["origin_topic"]), r["origin_topic"],
                    r["origin_partition"], r["origin_offset"], r["key"], r["original"],
                    r["error_class"], r["reason"], r["failed_at"], r["part_index"],
                )
            )  # fmt: skip
    return out


async def _from_table(settings: Settings) -> list[DeadLetter]:
    """The sink's own dead letters (stage ``sink``): they exist only in the table."""
    ops = settings.pipeline.zones.operational
    conn = await asyncpg.connect(settings.postgres.dsn, timeout=5)
    try:
        rows = await conn.fetch(
            f"SELECT origin_topic, origin_partition, origin_offset, key, original, error_class,"
            f" reason, failed_at FROM {ops}.dead_letters WHERE stage = 'sink'"
        )
    finally:
        await conn.close()
    return [
        DeadLetter(
            "sink", _source_of(settings, r["origin_topic"]), r["origin_topic"],
            r["origin_partition"], r["origin_offset"], r["key"], r["original"],
            r["error_class"], r["reason"], r["failed_at"],
        )
        for r in rows
    ]  # fmt: skip


async def dead_letters(
    settings: Settings,
    stage: str | None = None,
    source: str | None = None,
    error_classes: list[str] | None = None,
    since: datetime | None = None,
    match: str | None = None,
) -> list[DeadLetter]:
    """Dead letters of every stage (or one), filtered, oldest first (``match``: a piece of the
    reason text, any case)."""
    stages = tuple(s for s in DLQ_STAGES if stage in (None, s))
    topics = tuple(s for s in stages if s != "sink")
    found = await asyncio.to_thread(_from_topics, settings, topics, since)
    if "sink" in stages:
        try:
            found += await _from_table(settings)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            if stage == "sink":
                raise
            print(
                f"oddsflow dlq: the sink's dead letters were not read ({exc}); start Postgres"
                " (oddsflow services up) and run oddsflow db migrate to see them",
                file=sys.stderr,
            )
    return sorted(
        (
            d
            for d in found
            if (source is None or d.source == source)
            and (not error_classes or d.error_class in error_classes)
            and (since is None or d.failed_at >= since)
            and (match is None or match.casefold() in d.reason.casefold())
        ),
        key=lambda d: d.failed_at,
    )


@dataclass
class Group:
    stage: str
    source: str
    error_class: str
    count: int
    example_origin: str
    example_reason: str
    first: datetime
    last: datetime
    examples: list[dict[str, str]]


def group(letters: list[DeadLetter], examples: int = 1) -> list[Group]:
    """By (stage, source, error class), most frequent first; the newest ``examples`` of each."""
    by: dict[tuple[str, str, str], list[DeadLetter]] = defaultdict(list)
    for d in letters:
        by[(d.stage, d.source, d.error_class)].append(d)
    out = []
    for (stage, source, error_class), ds in by.items():
        newest = ds[-1]
        out.append(
            Group(
                stage, source, error_class, len(ds), newest.origin, newest.reason,
                ds[0].failed_at, newest.failed_at,
                [{"origin": d.origin, "failed_at": iso(d.failed_at), "reason": d.reason}
                 for d in reversed(ds[-examples:])] if examples else [],
            )
        )  # fmt: skip
    return sorted(out, key=lambda g: (-g.count, g.stage, g.source, g.error_class))


#: Characters of a reason shown in a table row; the whole reason is in ``--json``.
REASON_WIDTH = 80


def format_groups(groups: list[Group], show_examples: bool) -> str:
    """The groups as a table, most frequent first; reasons cut at a word boundary ("…")."""
    total = sum(g.count for g in groups)
    if not groups:
        return "no dead letters"
    rows: list[tuple[object, ...]] = []
    for g in groups:
        rows.append((g.stage, g.source, g.error_class, g.count, g.example_origin,
                     shorten(g.example_reason, REASON_WIDTH)))  # fmt: skip
        if show_examples:
            rows.extend(
                ("", "", "", "", f"{e['failed_at']}  {e['origin']}", shorten(e["reason"], 90))
                for e in g.examples
            )
    columns = ("stage", "source", "error class", "count", "example origin", "reason")
    return f"{total} dead letters in {len(groups)} groups\n" + render(
        table(columns, rows, right=("count",))
    )


# -- replay -------------------------------------------------------------------------------------


def replays_by_origin(
    settings: Settings, topics: set[str], since: datetime | None = None
) -> Counter[str]:
    """How many times each origin was re-injected: the replay headers on ``topics`` (those
    written since ``since``: a replay is written after its dead letter)."""
    seen: Counter[str] = Counter()
    for topic in sorted(topics):
        for msg in read_topic(settings, topic, since):
            for name, value in msg.headers() or ():
                if name == REPLAY_OF and value:
                    seen[value.decode()] += 1
    return seen


def replays_by_source(settings: Settings) -> dict[str, int]:
    """Per raw source, the raw records that are replays of dead letters."""
    out = {}
    for source in RAW_SOURCES:
        n = sum(replays_by_origin(settings, {topic_name(settings, raw_topic(source))}).values())
        if n:
            out[source] = n
    return out


@dataclass
class ReplayPlan:
    selected: int  # dead letters matching the filters
    records: list[DeadLetter]  # one per origin, to re-inject
    already: int  # origins skipped: replayed before
    refused: int  # sink dead letters (not replayable by re-injection)


def plan_replay(settings: Settings, letters: list[DeadLetter], again: bool = False) -> ReplayPlan:
    """One record per origin; origins already replayed are skipped unless ``again``."""
    replayable = [d for d in letters if d.stage in REPLAYABLE]
    by_origin: dict[str, DeadLetter] = {}
    for d in replayable:
        by_origin.setdefault(d.origin, d)
    first = min((d.failed_at for d in by_origin.values()), default=None)
    since = first - timedelta(minutes=1) if first else None
    done = replays_by_origin(settings, {d.origin_topic for d in by_origin.values()}, since)
    records = [d for o, d in by_origin.items() if again or not done[o]]
    return ReplayPlan(len(letters), records, len(by_origin) - len(records),
                      len(letters) - len(replayable))  # fmt: skip


#: A raw record to re-inject: (key, value).
Raw = tuple[bytes | None, bytes | None]
#: Wanted offsets further apart than this are reached by a seek, not by reading through.
_SEEK_GAP = 500


def fetch_originals(
    settings: Settings, letters: list[DeadLetter], timeout: float = 30.0
) -> tuple[dict[str, Raw], dict[str, str]]:
    """The raw records of ``letters`` that carry no copy, read at their origins: (origin →
    (key, value), origin → why it cannot be read). Dead letters with ``original`` need nothing.

    Why: a refused part of a payload points at its raw record instead of copying it (one copy
    per refused line did not scale); the raw topic is the system of record until its retention
    removes the record, and then replay must say so rather than send something else."""
    wanted: dict[tuple[str, int], set[int]] = defaultdict(set)
    for d in letters:
        if d.original is None:
            wanted[(d.origin_topic, d.origin_partition)].add(d.origin_offset)
    found: dict[str, Raw] = {}
    missing: dict[str, str] = {}
    if not wanted:
        return found, missing
    group = f"{settings.kafka.topic_prefix}oddsflow-dlq-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(consumer_config(settings, group, **{"enable.partition.eof": True}))
    try:
        for (topic, partition), offsets in sorted(wanted.items()):
            _fetch_partition(consumer, topic, partition, sorted(offsets), timeout, found, missing)
    finally:
        consumer.close()
    return found, missing


def _fetch_partition(
    consumer: Consumer,
    topic: str,
    partition: int,
    offsets: list[int],
    timeout: float,
    found: dict[str, Raw],
    missing: dict[str, str],
) -> None:
    """Read ``offsets`` (sorted) of one partition into ``found``; explain the rest in
    ``missing``. Reads forward, seeking over gaps wider than _SEEK_GAP."""

    def origin(offset: int) -> str:
        return f"{topic}:{partition}:{offset}"

    try:
        low, high = watermark(consumer, TopicPartition(topic, partition))
    except Exception as exc:  # KafkaException: unknown topic or partition, broker down
        for o in offsets:
            missing[origin(o)] = f"cannot read {topic} partition {partition}: {exc}"
        return
    todo = []
    for o in offsets:
        if o < low:
            missing[origin(o)] = (
                f"the raw record is gone: {topic} partition {partition} starts at offset {low:,}"
                " now (retention removed it), and the dead letter carries no copy"
            )
        elif o >= high:
            missing[origin(o)] = f"{topic} partition {partition} ends at offset {high:,}"
        else:
            todo.append(o)
    if not todo:
        return
    consumer.assign([TopicPartition(topic, partition, todo[0])])
    deadline = time.monotonic() + timeout
    i, why = 0, f"no record read within {timeout:.0f}s"
    while i < len(todo) and time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=500, timeout=0.5):
            err = msg.error()
            if err is not None:
                # the end, or a read error: whatever is not read yet cannot be
                ended = err.code() == KafkaError._PARTITION_EOF
                why = "no readable record there" if ended else f"cannot read it: {err}"
                deadline = 0.0
                break
            offset = msg.offset()
            while i < len(todo) and todo[i] < offset:  # passed over (an aborted record)
                missing[origin(todo[i])] = "no readable record there"
                i += 1
            if i < len(todo) and offset == todo[i]:
                found[origin(offset)] = (msg.key(), msg.value())
                i += 1
                if i < len(todo) and todo[i] - offset > _SEEK_GAP:
                    consumer.seek(TopicPartition(topic, partition, todo[i]))
                    break
            if i == len(todo):
                break
    for o in todo[i:]:
        missing[origin(o)] = why


def replay(
    settings: Settings,
    records: list[DeadLetter],
    timeout: float = 60.0,
    fetched: dict[str, Raw] | None = None,
) -> int:
    """Re-inject ``records`` (their raw record and key, replay headers); returns how many
    landed. A dead letter without ``original`` sends the raw record read at its origin
    (``fetched``, from :func:`fetch_originals`); one that was not read is not sent."""
    producer = Producer(producer_config(settings))
    failed: list[str] = []
    fetched = fetched or {}

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failed.append(f"{msg.topic()}: {err}")

    sendable = [d for d in records if d.original is not None or d.origin in fetched]
    for d in sendable:
        key, value = (d.key, d.original) if d.original is not None else fetched[d.origin]
        headers = [(REPLAY_OF, d.origin.encode()), (REPLAY_CLASS, d.error_class.encode())]
        producer.produce(d.origin_topic, value=value, key=key, headers=headers,
                         on_delivery=delivered)  # fmt: skip
        producer.poll(0)
    left = producer.flush(timeout)
    if failed or left:
        raise SystemExit(
            f"oddsflow dlq replay: {len(failed) + left} of {len(sendable)} records were not"
            f" acknowledged ({'; '.join(failed[:3]) or 'timed out'}); the rest landed. Run the"
            " same command again: origins already replayed are skipped."
        )
    if sendable:
        _audit(settings, sendable)
    return len(sendable)


def _audit(settings: Settings, records: list[DeadLetter]) -> None:
    """One pipeline event per replay run (operational.pipeline_events), for the audit trail."""
    counts = Counter(d.error_class for d in records)
    event = {
        "event_id": str(uuid.uuid4()),
        "stage": "dlq",
        "kind": "replayed",
        "at": datetime.now(UTC),
        "worker": f"{socket.gethostname()}:cli",
        "details": {
            "records": str(len(records)),
            **{f"class.{k}": str(v) for k, v in counts.items()},
        },
    }
    value = default_codec().encoder("oddsflow.operational.PipelineEvent")(event)
    producer = Producer(producer_config(settings))
    producer.produce(topic_name(settings, "operational.pipeline_events"), value=value, key=b"dlq")
    producer.flush(10)


# -- command line -------------------------------------------------------------------------------


def add_dlq_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dlq_cmd", required=True)
    helps = {
        "list": "dead letters grouped by reason, with counts and examples",
        "replay": "re-inject dead letters into their origin topic after a fix",
    }
    for name, h in helps.items():
        s = sub.add_parser(name, help=h)
        s.add_argument("--stage", choices=DLQ_STAGES)
        s.add_argument("--source", help="raw source (simulator, sbd, ...)")
        s.add_argument("--reason", "--error-class", dest="reason", action="append",
                       help="error class, e.g. unknown_team (repeatable)")  # fmt: skip
        s.add_argument("--match", help="a piece of the reason text, e.g. 'Gotham Knights'")
        s.add_argument("--since", type=moment,
                       help="failed at or after: ISO 8601 or 30m, 2h, 1d ago")  # fmt: skip
        s.add_argument("--json", action="store_true")
        if name == "list":
            s.add_argument("-n", "--examples", type=non_negative_int, default=0,
                           help="show the N newest examples of each group")  # fmt: skip
        else:
            s.add_argument("--dry-run", action="store_true", help="show what would be sent")
            s.add_argument("--again", action="store_true",
                           help="also origins that were replayed before")  # fmt: skip


def run_dlq(settings: Settings, args: argparse.Namespace) -> int:
    since = args.since
    letters = asyncio.run(
        dead_letters(settings, args.stage, args.source, args.reason, since, args.match)
    )
    if args.dlq_cmd == "list":
        groups = group(letters, max(args.examples, 1))
        if args.json:
            emit(groups)
        else:
            print(format_groups(groups, args.examples > 0))
        return 0
    plan = plan_replay(settings, letters, again=args.again)
    fetched, gone = fetch_originals(settings, plan.records)
    records = [d for d in plan.records if d.origin not in gone]
    topics = Counter(d.origin_topic for d in records)
    summary: dict[str, object] = {
        "dead_letters": plan.selected,
        "records": len(records),
        "already_replayed": plan.already,
        "not_replayable": plan.refused,
        "gone": gone,
        "topics": dict(topics),
        "dry_run": bool(args.dry_run),
    }
    if not args.dry_run and records:
        summary["replayed"] = replay(settings, records, fetched=fetched)
    status = 1 if gone and not args.dry_run else 0
    if args.json:
        emit(summary)
        return status
    verb = "would re-inject" if args.dry_run else "re-injected"
    print(
        f"{plan.selected} dead letters selected: {verb} {len(records)} records"
        f" ({', '.join(f'{n} to {t}' for t, n in topics.items()) or 'none'});"
        f" {plan.already} origins already replayed (--again to resend),"
        f" {plan.refused} sink dead letters not replayable (reset the sink: oddsflow replay)"
    )
    for d in records[:10]:
        print(f"  {d.origin}  {d.error_class}: {shorten(d.reason, REASON_WIDTH)}")
    if len(records) > 10:
        print(f"  ... and {len(records) - 10} more")
    if gone:
        print(f"{len(gone)} raw records cannot be replayed:")
        for origin, why in list(gone.items())[:10]:
            print(f"  {origin}  {why}")
        if len(gone) > 10:
            print(f"  ... and {len(gone) - 10} more")
    return status
