"""Curated results at once, corrected when a late record changes them.

Why: the engine used to hold each game's newest ``allowed_lateness`` minutes back until the
game's watermark passed them, so that out-of-order records could take their place first. Live,
that made every steam alert ten minutes late. Now every record is applied as soon as it is
released in event-time order and its results leave in the same transaction; a record that is
older than what was already applied for its game (within the allowed lateness) is put in its
place by replaying the game from a checkpoint, and the results that changed are sent again:

* a result whose key is produced again with other values is re-sent with the same key (the
  sink updates the row; a subscriber keeps the last record per key);
* a result that no longer holds is re-sent with ``retracted = true`` (the sink deletes the row);
* results that did not change are not re-sent.

So a subscriber first sees each result when its inputs are in, and after a late record, exactly
the keys whose values changed. Beyond the allowed lateness a record is late: reported on
``operational.pipeline_events``, never merged (staging dead-letters such records before they
get here; see docs/TIME.md).

Checkpoints: each game keeps serialized states (``ckpts``, every ``CHECKPOINT_STEP`` of event
time) and the records applied after the oldest (``tail``), so any admissible late record finds a
checkpoint older than itself. A checkpoint is dropped once a newer one is older than the game's
newest event time minus the lateness. Both are state: written to the changelog as their own
entries (once when made, a deletion when dropped), never inside the game's document.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from typing import Any

from core.topics import spec
from streams.features.definitions import MINUTE_US, TOPIC_VECTOR, from_us
from streams.features.engine import PAYLOAD, FeatureEngine, Output

#: How often (event time) a game's state is checkpointed: half the default lateness.
CHECKPOINT_STEP_US = 5 * MINUTE_US
#: While a game is dense (after a correction, for the lateness), a volatile checkpoint every
#: this many instants.
DENSE_EVERY = 16
#: Changelog key prefixes: a tail record and a checkpoint (game ids never start with NUL).
TAIL_PREFIX = b"\x00tail|"
CKPT_PREFIX = b"\x00ckpt|"

_dumps = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_KEYS: dict[str, tuple[str, ...]] = {}


def result_key(topic: str, rec: dict[str, Any]) -> tuple[Any, ...]:
    """The natural key of a curated result (its table's key)."""
    cols = _KEYS.get(topic)
    if cols is None:
        cols = _KEYS[topic] = spec(topic).key_columns
    return (topic, *(rec[c] for c in cols))


def _last_per_key(outputs: list[Output]) -> dict[tuple[Any, ...], Output]:
    last: dict[tuple[Any, ...], Output] = {}
    for topic, rec in outputs:
        last[result_key(topic, rec)] = (topic, rec)
    return last


def tail_key(gid: str, seq: int) -> bytes:
    return TAIL_PREFIX + f"{gid}|{seq}".encode()


def ckpt_key(gid: str, c: int | None) -> bytes:
    return CKPT_PREFIX + f"{gid}|{'-' if c is None else c}".encode()


class LiveEngine:
    """A partition's engine in live mode: ``apply`` a released batch, get results at once."""

    def __init__(self, engine: FeatureEngine, lateness_us: int) -> None:
        self.engine = engine
        self.lateness_us = lateness_us
        self.tails: dict[str, list[list[Any]]] = {}  # gid -> [[t, seq, payload], ...] by (t, seq)
        self.ckpts: dict[str, list[list[Any]]] = {}  # gid -> [[c | None, state bytes], ...]
        #: Volatile checkpoints, in memory only (a restart falls back to the stored ones, which
        #: replay to the same state and the same corrections): gid -> [[c, state bytes], ...],
        #: and the results sent since the oldest of them, gid -> [[instant, [results]], ...],
        #: so a correction from one of them replays nothing to learn what was sent.
        self.vckpts: dict[str, list[list[Any]]] = {}
        self.vlog: dict[str, list[list[Any]]] = {}
        #: gid -> event time until which the game is "dense": a volatile checkpoint every
        #: DENSE_EVERY instants, set by a correction (disorder comes in bursts)
        self.dense_until: dict[str, int] = {}
        self.changes: dict[bytes, bytes | None] = {}  # changelog entries since the last take
        self.late: list[dict[str, Any]] = []
        self.corrected = 0  # results re-sent with other values
        self.retracted = 0  # results withdrawn
        self.replays = 0

    # ------------------------------------------------------------------ a batch

    def apply(self, items: list[tuple[str, dict[str, Any]]]) -> list[Output]:
        """Records released in event-time order ((kind, record)); their results, corrections
        and withdrawals. Late records are collected in ``late``."""
        by_game: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for kind, rec in items:
            by_game.setdefault(rec["game_id"], []).append((kind, rec))
        out: list[Output] = []
        for gid, recs in by_game.items():
            self._apply_game(gid, recs, out)
        return out

    def _apply_game(
        self, gid: str, recs: list[tuple[str, dict[str, Any]]], out: list[Output]
    ) -> None:
        engine = self.engine
        g = engine.game(gid)
        if g is None:
            g = engine.create_game(recs[0][1])
            self._checkpoint(gid, g, None)
            self.tails[gid] = []
        newest = g["max"]
        applied = newest  # everything received so far is applied
        fresh: list[list[Any]] = []
        earliest_old: int | None = None
        for kind, rec in recs:
            engine.note_commence(g, rec)
            t, payload = PAYLOAD[kind](rec)
            if newest is not None and t < newest - self.lateness_us:
                g["late"] += 1
                self.late.append(
                    {
                        "game_id": gid,
                        "kind": payload[0],
                        "event_time": from_us(t),
                        "watermark": from_us(newest - self.lateness_us),
                    }
                )
                continue
            if newest is None or t > newest:
                newest = t
            g["seq"] += 1
            fresh.append([t, g["seq"], payload])
            if applied is not None and t <= applied and (earliest_old is None or t < earliest_old):
                earliest_old = t
        if not fresh:
            return
        fresh.sort(key=lambda x: (x[0], x[1]))
        if earliest_old is None:
            self._apply_in_order(gid, g, fresh, out)
            self._add_tail(gid, fresh)
        else:
            g = self._correct(gid, g, fresh, earliest_old, out)
        self._maintain(gid, g)

    def _apply_in_order(
        self, gid: str, g: dict[str, Any], items: list[list[Any]], out: list[Output]
    ) -> None:
        """Apply records newer than everything applied, keeping volatile checkpoints: before
        the newest instant always (a record of that instant arriving in a later batch is the
        common correction: it replays one instant), and every DENSE_EVERY instants while the
        game is dense after a correction (then a correction replays a few instants, not a
        stored checkpoint's five minutes, twice)."""
        engine = self.engine
        vckpts, vlog = self.vckpts.setdefault(gid, []), self.vlog.setdefault(gid, [])
        dense = self.dense_until.get(gid)
        if dense is None or items[-1][0] > dense:
            self.dense_until.pop(gid, None)
            # sparse: one volatile checkpoint, before the newest instant
            i = bisect_left(items, items[-1][0], key=lambda x: x[0])
            if i:
                engine.apply_instants(g, items[:i], out)
            vckpts[:] = [[g["max"], _dumps(g)]]
            newest: list[Output] = []
            engine.apply_instants(g, items[i:], newest)
            vlog[:] = [[items[-1][0], newest]]
            out += newest
            return
        i, n, since = 0, len(items), len(vlog)
        while i < n:
            t = items[i][0]
            j = i + 1
            while j < n and items[j][0] == t:
                j += 1
            if since >= DENSE_EVERY or j == n:  # every few instants, and before the newest
                vckpts.append([g["max"], _dumps(g)])
                since = 0
            results: list[Output] = []
            engine.apply_instants(g, items[i:j], results)
            vlog.append([t, results])
            out += results
            since += 1
            i = j

    def _prune_volatile(self, gid: str, cut: int) -> None:
        """Volatile checkpoints older than ``cut`` (but the newest of those) and the results
        before the oldest one kept are of no use to an admissible record."""
        vckpts, vlog = self.vckpts.get(gid), self.vlog.get(gid)
        if not vckpts or vlog is None:
            return
        while len(vckpts) >= 2 and vckpts[1][0] is not None and vckpts[1][0] < cut:
            del vckpts[0]
        oldest = vckpts[0][0]
        if oldest is not None:
            keep = bisect_left(vlog, oldest + 1, key=lambda x: x[0])
            del vlog[:keep]

    # ------------------------------------------------------------------ corrections

    def _correct(
        self, gid: str, g: dict[str, Any], fresh: list[list[Any]], since: int, out: list[Output]
    ) -> dict[str, Any]:
        """Replay the game from the newest checkpoint before ``since`` with the fresh records
        and send what changed against what was sent (known for a volatile checkpoint, replayed
        for a stored one). Returns the new game state."""
        ckpts = self.ckpts[gid]
        i = len(ckpts) - 1
        while i > 0 and not (ckpts[i][0] is not None and ckpts[i][0] < since):
            i -= 1
        vckpts, vlog = self.vckpts.get(gid, []), self.vlog.get(gid, [])
        v = len(vckpts) - 1
        while v >= 0 and not (vckpts[v][0] is not None and vckpts[v][0] < since):
            v -= 1
        stored_c = ckpts[i][0]
        volatile = v >= 0 and (stored_c is None or vckpts[v][0] >= stored_c)
        base_time, base = vckpts[v] if volatile else ckpts[i]
        tail = self.tails[gid]
        start = 0 if base_time is None else bisect_left(tail, base_time + 1, key=lambda x: x[0])
        replayed = tail[start:]
        if volatile:
            sent = [r for t, results in vlog if t > base_time for r in results]
            del vckpts[v + 1 :]  # what the late records fall before, and the log after the base
            keep = bisect_left(vlog, base_time + 1, key=lambda x: x[0])
            del vlog[keep:]
        else:
            sent = self._replay(base, replayed)
            vckpts.clear()
            vlog.clear()
        old = _last_per_key(sent)
        merged = sorted(replayed + fresh, key=lambda x: (x[0], x[1]))
        newest = max(merged[-1][0], g["max"] or merged[-1][0])
        self.dense_until[gid] = newest + self.lateness_us
        state = json.loads(base)
        after: list[Output] = []
        self._apply_in_order(gid, state, merged, after)
        new = _last_per_key(after)
        if volatile and any(k[0] == TOPIC_VECTOR for k in old.keys() - new.keys()):
            # a withdrawn vector: its key (first pitch) may also come from an instant before
            # the base, whose value must then come back; every other result's key holds its
            # instant. Decide it against a stored checkpoint's replay.
            c, state_before = ckpts[i]
            cstart = 0 if c is None else bisect_left(tail, c + 1, key=lambda x: x[0])
            old = _last_per_key(self._replay(state_before, tail[cstart:]))
            full = sorted(tail[cstart:] + fresh, key=lambda x: (x[0], x[1]))
            vckpts.clear()
            vlog.clear()
            state, after = json.loads(state_before), []
            self._apply_in_order(gid, state, full, after)
            new = _last_per_key(after)
        # counters that live beside the replayed state carry on
        state["seq"], state["late"] = g["seq"], g["late"]
        self.engine.replace_game(gid, state)
        self.replays += 1
        for key, result in new.items():
            if old.get(key) != result:
                out.append(result)
                if key in old:
                    self.corrected += 1
        for key, (topic, rec) in old.items():
            if key not in new:
                out.append((topic, {**rec, "retracted": True}))
                self.retracted += 1
        for c, _state in ckpts[i + 1 :]:  # checkpoints the late records fall before
            self.changes[ckpt_key(gid, c)] = None
        del ckpts[i + 1 :]
        self._add_tail(gid, fresh)
        tail.sort(key=lambda x: (x[0], x[1]))
        return state

    def _replay(self, base: bytes, items: list[list[Any]]) -> list[Output]:
        """The results of ``items`` applied to a stored state (what was sent for them)."""
        results: list[Output] = []
        self.engine.apply_instants(json.loads(base), items, results)
        return results

    # ------------------------------------------------------------------ state upkeep

    def _add_tail(self, gid: str, items: list[list[Any]]) -> None:
        tail = self.tails[gid]
        tail.extend(items)
        changes = self.changes
        for item in items:
            changes[tail_key(gid, item[1])] = _dumps(item).encode()

    def _checkpoint(self, gid: str, g: dict[str, Any], c: int | None) -> None:
        state = _dumps(g).encode()
        self.ckpts.setdefault(gid, []).append([c, state])
        self.changes[ckpt_key(gid, c)] = state

    def _maintain(self, gid: str, g: dict[str, Any]) -> None:
        """A new checkpoint every step; drop what no admissible record can need."""
        ckpts = self.ckpts[gid]
        newest = g["max"]
        last = ckpts[-1][0]
        if last is None or newest - last >= CHECKPOINT_STEP_US:
            self._checkpoint(gid, g, newest)
        cut = newest - self.lateness_us
        self._prune_volatile(gid, cut)
        dropped = False
        while len(ckpts) >= 2 and ckpts[1][0] < cut:
            self.changes[ckpt_key(gid, ckpts[0][0])] = None
            del ckpts[0]
            dropped = True
        if dropped:
            horizon = ckpts[0][0]
            tail = self.tails[gid]
            keep = bisect_left(tail, horizon + 1, key=lambda x: x[0])
            for item in tail[:keep]:
                self.changes[tail_key(gid, item[1])] = None
            del tail[:keep]

    def forget(self, gid: str) -> None:
        """The game expired: its checkpoints and tail go too."""
        self.vckpts.pop(gid, None)
        self.vlog.pop(gid, None)
        self.dense_until.pop(gid, None)
        for c, _ in self.ckpts.pop(gid, []):
            self.changes[ckpt_key(gid, c)] = None
        for item in self.tails.pop(gid, []):
            self.changes[tail_key(gid, item[1])] = None

    def take_changes(self) -> list[tuple[bytes, bytes | None]]:
        changes, self.changes = self.changes, {}
        return list(changes.items())

    def restore_entry(self, key: bytes, value: bytes) -> bool:
        """Install a checkpoint or tail entry read back from the changelog (False: not one)."""
        if key.startswith(TAIL_PREFIX):
            gid = key[len(TAIL_PREFIX) :].decode().rsplit("|", 1)[0]
            self.tails.setdefault(gid, []).append(json.loads(value))
            return True
        if key.startswith(CKPT_PREFIX):
            gid, c = key[len(CKPT_PREFIX) :].decode().rsplit("|", 1)
            self.ckpts.setdefault(gid, []).append([None if c == "-" else int(c), value])
            return True
        return False

    def restored(self) -> None:
        """Order what ``restore_entry`` installed (the changelog keeps no order per key)."""
        for tail in self.tails.values():
            tail.sort(key=lambda x: (x[0], x[1]))
        for ckpts in self.ckpts.values():
            ckpts.sort(key=lambda x: -(1 << 62) if x[0] is None else x[0])
