"""One input partition's feature state: its engine, its event-time clock, flush and expiry.

Why per partition: a partition's records arrive in a fixed order whatever the replay speed, the
number of workers or the restarts, so every decision taken from that order alone (when a game's
buffer is released, when a game is dropped) is the same on every replay. One engine shared by
several partitions would let one partition's progress decide another's, and the result would
depend on how fast each was consumed.

Event time drives everything:

* Records are applied as soon as they are released in event-time order, and their results leave
  at once (``live.LiveEngine``); a record older than what its game already applied, within the
  allowed lateness, is put in its place by a replay and the changed results are re-sent.
  Lateness is judged per game (its key keeps its records in order), never by the other games of
  the partition, whose interleaving differs from run to run.
* A game whose first pitch (else newest event) is more than ``STATE_RETENTION`` behind the clock
  is expired: released, then dropped from the engine and from the table (bounded state). Checked
  each time the clock enters a new ``EXPIRE_STEP`` of event time.
* End of input (a backfill, a test): ``flush_all`` settles what waits for the end of a game's
  input (a final score that came before first pitch); the worker's idle tick calls it after a
  quiet period (see ``worker.py``).

The state of one game is stored as JSON bytes (``encode_game``/``decode_game``), with the
partition's own clock in a separate entry, so a restarted worker resumes the same decisions.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any

from core.settings import FeatureSettings
from streams.features.definitions import MINUTE_US, from_us, to_us
from streams.features.engine import FeatureEngine, Output
from streams.features.live_engine import LiveEngine

#: A game's state is dropped this long (in the partition's event time) after its first pitch.
STATE_RETENTION = timedelta(hours=12)
#: Expiry is checked when the partition's clock enters a new step of this length.
EXPIRE_STEP_US = 60 * MINUTE_US
#: Table key of a partition's own entry (clock, next expiry); game ids never start with NUL.
META_PREFIX = b"\x00partition|"
#: Table key prefix of a queued input record (``queue_key``): one entry per record, its raw
#: bytes as value, so no entry grows with the queue (the broker refuses records over 1 MB).
QUEUE_PREFIX = b"\x00queue|"

LINE, SPLIT, GAME = "line", "split", "game"
#: The state is plain trees of dicts, lists and numbers: no cycles to look for.
_dumps = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
KINDS = (LINE, SPLIT, GAME)
#: An input topic with nothing queued holds the others back at most this long (wall clock).
ALIGN_IDLE_SECONDS = 2.0


def record_time_us(kind: str, rec: dict[str, Any]) -> int:
    """The event time the engine files the record under (a game may lack event_time)."""
    if kind == GAME:
        return to_us(rec.get("event_time") or rec.get("ingested_at") or rec["commence_time"])
    return to_us(rec["event_time"])


def meta_key(partition: int) -> bytes:
    return META_PREFIX + str(partition).encode()


def queue_key(partition: int, kind: str, offset: int) -> bytes:
    return QUEUE_PREFIX + f"{partition}|{kind}|{offset}".encode()


class PartitionFeatures:
    """The engine of one partition plus the event-time bookkeeping that flushes and expires it."""

    def __init__(self, settings: FeatureSettings, partition: int) -> None:
        self.partition = partition
        self.engine = FeatureEngine(settings)
        self._lateness = settings.allowed_lateness_minutes * MINUTE_US
        self.live = LiveEngine(self.engine, self._lateness)
        self._retention = int(STATE_RETENTION.total_seconds() * 1_000_000)
        self.clock: int | None = None
        self.next_expire: int | None = None
        self.newest: dict[str, int] = {}
        self.flushed: set[str] = set()
        self.inputs = AlignedInputs()
        self.queue_dirty = False  # the aligned inputs' queues or positions changed since a write
        #: Next offset to consume per input topic (by kind): everything before it is applied
        #: or queued. Stored with the state, so a restart skips what the state already holds.
        self.pos: dict[str, int] = {}
        self.touched: set[str] = set()  # games whose stored state must be rewritten
        self.dropped: set[str] = set()  # games whose stored state must be deleted
        self._handlers = {
            LINE: self.engine.process_line,
            SPLIT: self.engine.process_split,
            GAME: self.engine.process_game,
        }

    # ------------------------------------------------------------------ processing

    def process(self, items: list[tuple[str, dict[str, Any]]]) -> list[Output]:
        """Records released in partition order: advance the clock (expiring games far behind
        it), then apply them at once; results, corrections and withdrawals out."""
        out: list[Output] = []
        for kind, rec in items:
            t = record_time_us(kind, rec)
            if self.clock is None or t > self.clock:
                self.clock = t
                self._advance(out)
        out += self.live.apply(items)
        newest = self.newest
        for kind, rec in items:
            gid = rec["game_id"]
            t = record_time_us(kind, rec)
            if t > newest.get(gid, -(1 << 62)):
                newest[gid] = t
            self.flushed.discard(gid)
            self.dropped.discard(gid)
            self.touched.add(gid)
        return out

    def feed(self, items: Iterable[tuple[str, dict[str, Any]]], chunk: int = 5000) -> list[Output]:
        """A whole input in partition order (a backfill, a benchmark, a test), in batches of
        about ``chunk`` records cut between instants, so no instant is split and nothing needs
        correcting; then the end of input (``flush_all``)."""
        out: list[Output] = []
        batch: list[tuple[str, dict[str, Any]]] = []
        last_t = None
        for kind, rec in items:
            t = record_time_us(kind, rec)
            if len(batch) >= chunk and t != last_t:
                out += self.process(batch)
                batch = []
            batch.append((kind, rec))
            last_t = t
        if batch:
            out += self.process(batch)
        return out + self.flush_all()

    def drain_late(self) -> list[dict[str, Any]]:
        late, self.live.late = self.live.late, []
        return late

    def _advance(self, out: list[Output]) -> None:
        assert self.clock is not None
        if self.next_expire is None or self.clock >= self.next_expire:
            self.next_expire = (self.clock // EXPIRE_STEP_US + 1) * EXPIRE_STEP_US
            out += self.expire(self.clock - self._retention)

    def expire(self, before_us: int) -> list[Output]:
        """Release and drop the games the engine expires at ``before_us``."""
        had = set(self.engine.game_ids())
        out = self.engine.expire(from_us(before_us))
        for gid in had - set(self.engine.game_ids()):
            self.live.forget(gid)
            self.newest.pop(gid, None)
            self.flushed.discard(gid)
            self.touched.discard(gid)
            self.dropped.add(gid)
        return out

    def flush_all(self) -> list[Output]:
        """End of input: release every game's buffered instants (the idle timer calls this),
        and settle scores that came before first pitch (``FeatureEngine.end``)."""
        out: list[Output] = []
        engine = self.engine
        for gid in engine.game_ids():
            if gid not in self.flushed or engine.buffered(gid) or engine.has_pending_final(gid):
                out += engine.end(gid)
                self.flushed.add(gid)
                self.touched.add(gid)
        return out

    def pending(self) -> bool:
        """Whether some game may still hold buffered instants or a score for first pitch."""
        engine = self.engine
        return any(
            gid not in self.flushed or engine.buffered(gid) or engine.has_pending_final(gid)
            for gid in self.newest
        )

    # ------------------------------------------------------------------ persistence

    def take_changes(self) -> list[tuple[bytes, bytes | None]]:
        """Table writes since the last call: touched games, dropped games (None), records that
        entered or left the input queues, the meta."""
        changes: list[tuple[bytes, bytes | None]] = []
        for gid in sorted(self.touched):
            changes.append((gid.encode(), self.encode_game(gid)))
        for gid in sorted(self.dropped):
            changes.append((gid.encode(), None))
        p = self.partition
        inputs = self.inputs
        for kind, off in sorted(inputs.removed):
            changes.append((queue_key(p, kind, off), None))
        for (kind, off), value in sorted(inputs.added.items()):
            changes.append((queue_key(p, kind, off), value))
        inputs.added.clear()
        inputs.removed.clear()
        changes += self.live.take_changes()
        if changes or self.queue_dirty:
            meta = {
                "p": p,
                "clock": self.clock,
                "next_expire": self.next_expire,
                "pos": self.pos,
            }
            changes.append((meta_key(self.partition), json.dumps(meta).encode()))
        self.queue_dirty = False
        self.touched.clear()
        self.dropped.clear()
        return changes

    def encode_game(self, gid: str) -> bytes:
        doc = {
            "p": self.partition,
            "newest": self.newest.get(gid),
            "flushed": gid in self.flushed,
            # The live state, serialised directly: ``snapshot()`` deep-copies first, which
            # doubled the cost of a batch; json.dumps copies anyway (read-only access).
            "g": self.engine._games[gid],
        }
        return _dumps(doc).encode()

    def restore(
        self,
        entries: dict[bytes, bytes],
        decode: Callable[[bytes], dict[str, Any]],
        now: float = 0.0,
    ) -> int:
        """Install this partition's live changelog entries; returns the number of games."""
        self.inputs = AlignedInputs()
        queued: list[tuple[int, int, str, bytes]] = []
        n = 0
        for key, value in entries.items():
            if key.startswith(QUEUE_PREFIX):
                _, kind, off = key[len(QUEUE_PREFIX) :].decode().split("|")
                queued.append((KINDS.index(kind), int(off), kind, value))
                continue
            if self.live.restore_entry(key, value):
                continue
            doc = json.loads(value)
            if key.startswith(META_PREFIX):
                self.clock, self.next_expire = doc["clock"], doc["next_expire"]
                self.pos = dict(doc.get("pos", {}))
                continue
            gid = key.decode()
            self.engine.restore(gid, doc["g"])
            if doc["newest"] is not None:
                self.newest[gid] = doc["newest"]
            if doc["flushed"]:
                self.flushed.add(gid)
            n += 1
        self.live.restored()
        for _, off, kind, value in sorted(queued):  # each topic's records in offset order
            self.inputs.put(kind, off, value, decode(value), now, stored=True)
        return n


class AlignedInputs:
    """Merges one partition's three input topics in event-time order before the engine.

    Faust reads each topic at its own pace: a small topic (games, splits) can be delivered whole
    while the lines topic is still at its start, and its event times would push every game's
    watermark past the lines still to come. So records wait in one queue per topic and are
    released smallest event time first, as long as every topic has something queued. A topic
    with an empty queue stops holding the others back when it has caught up with its end of
    log (``caught_up``) or has held them for ``ALIGN_IDLE_SECONDS`` without receiving anything
    (the wait starts when it first holds, as Kafka Streams' ``max.task.idle.ms``: a topic that
    was merely quiet before, e.g. games while staging had written nothing yet, must still hold
    lines back while its records are on the broker, or they arrive behind their games' lines
    and are late in one run and not in another). Disorder that still gets through is within
    the engine's lateness.
    Queued records are stored with the partition's state, one table entry each (``added`` and
    ``removed`` since the last write, see ``take_changes``): Kafka counts them consumed once the
    batch that brought them is done.
    """

    def __init__(self) -> None:
        self.queues: dict[str, deque[tuple[int, int, bytes, dict[str, Any]]]] = {
            k: deque() for k in KINDS
        }
        self.waiting: dict[str, float] = {}  # since when an empty, lagging topic holds the others
        self.size = 0
        self.added: dict[tuple[str, int], bytes] = {}  # queued since the last table write
        self.removed: set[tuple[str, int]] = set()  # released, stored: to delete

    def put(
        self,
        kind: str,
        offset: int,
        value: bytes,
        rec: dict[str, Any],
        now: float,
        stored: bool = False,
    ) -> None:
        self.queues[kind].append((record_time_us(kind, rec), offset, value, rec))
        self.waiting.pop(kind, None)
        self.size += 1
        if not stored:
            self.added[(kind, offset)] = value

    def release(
        self, now: float, caught_up: Callable[[str], bool]
    ) -> Iterator[tuple[str, int, dict[str, Any]]]:
        """(kind, offset, record) in merged order, while no busy topic's queue is empty.

        Whether an empty topic holds the others back cannot change during one call (nothing
        is consumed meanwhile), so it is asked once per topic; and once a single queue is left
        with nothing holding it, it is released whole (the common case: lines only). A
        generator, so each record is freed as the engine is done with it (a list of a batch's
        decoded records cost 18 MB at the peak)."""
        queues = self.queues
        holds: dict[str, bool] = {}

        def holding(kind: str) -> bool:
            h = holds.get(kind)
            if h is None:
                if caught_up(kind):
                    self.waiting.pop(kind, None)
                    h = False
                else:
                    h = now - self.waiting.setdefault(kind, now) < ALIGN_IDLE_SECONDS
                holds[kind] = h
            return h

        while self.size:
            busy = [kind for kind in KINDS if queues[kind]]
            if any(holding(kind) for kind in KINDS if not queues[kind]):
                return
            if len(busy) == 1:
                kind = busy[0]
                q = queues[kind]
                while q:
                    yield self._pop(kind, q)
                continue
            best: tuple[int, int] | None = None
            pick = ""
            for rank, kind in enumerate(KINDS):
                q = queues[kind]
                if q and (best is None or (q[0][0], rank) < best):
                    best, pick = (q[0][0], rank), kind
            yield self._pop(pick, queues[pick])

    def _pop(
        self, kind: str, q: deque[tuple[int, int, bytes, dict[str, Any]]]
    ) -> tuple[str, int, dict[str, Any]]:
        _, offset, _, rec = q.popleft()
        self.size -= 1
        if self.added.pop((kind, offset), None) is None:
            self.removed.add((kind, offset))  # it was in the table
        return kind, offset, rec
