"""Incremental curated-feature engine: staged lines, splits and games in, curated records out.

Pure Python (no Kafka, no database) so the streaming worker, the benchmark and the tests run the
same code. Definitions: DESIGN.md, "Domain definitions"; choices the design left open are
documented in ``streams/features/README.md``.

Why it is shaped like this:

* Keyed per game. All books of a game share one Kafka partition, so every cross-book feature is
  computed from one game's state, and that state is a plain JSON-able dict (``snapshot`` /
  ``restore``) the worker keeps in a changelogged topic.
* Deterministic under reordering. Events are buffered per game and released in event-time order
  once the game's watermark (max event time seen − allowed lateness) has passed them; all events
  of one instant are applied together, in a fixed order, before anything is emitted. An event
  older than the watermark is late: counted and reported (``drain_late``), never merged.
* Bounded. Per-key histories keep only what the largest window needs (plus the one value at or
  before its start); ``expire`` drops whole games once final or long past first pitch.
"""

from __future__ import annotations

import copy
import heapq
from bisect import bisect_right
from collections.abc import Iterable
from datetime import datetime
from operator import itemgetter
from typing import Any

from core.settings import FeatureSettings
from streams.features.definitions import (
    CANONICAL_SIDE,
    FEATURE_SET_VERSION,
    MINUTE_US,
    OTHER_SIDE,
    PRIMARY_UNIT,
    TOPIC_CONSENSUS,
    TOPIC_SHARP,
    TOPIC_STEAM,
    TOPIC_VECTOR,
    TOPIC_VELOCITY,
    cents,
    favoured_side,
    from_us,
    to_us,
)

Output = tuple[str, dict[str, Any]]
History = list[list[Any]]  # [[t_us, value], ...] ascending, pruned

_T = itemgetter(0)
_FINAL = frozenset({"final", "closed", "complete", "completed"})
_KIND_ORDER = {"L": 0, "S": 1, "G": 2}


def _median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2.0


def _asof(h: History, x: int) -> Any:
    """Value of the step function at x (last value at or before x), or None."""
    if h[-1][0] <= x:
        return h[-1][1]
    i = bisect_right(h, x, key=_T)
    return h[i - 1][1] if i else None


def _window(h: History, t: int, x: int) -> tuple[Any, Any]:
    """(value at x or None, base): base is the first value after x when nothing was at x."""
    if h[-1][0] <= x:
        v = h[-1][1]
        return v, v
    i = bisect_right(h, x, key=_T)
    if i:
        v = h[i - 1][1]
        return v, v
    return None, h[0][1]


def _sort_key(p: list[Any]) -> tuple[Any, ...]:
    """Fixed order of the events of one instant, independent of arrival order."""
    kind = p[0]
    if kind == "L":
        return (0, p[8], p[9], p[1], p[2], p[3], p[5], -1e9 if p[4] is None else p[4])
    if kind == "S":
        return (1, p[9], p[10], p[1], p[2], p[3], p[4], p[5], -1.0 if p[6] is None else p[6])
    return (2, p[4], p[5], p[1])


def _tier_label(tier: float) -> str:
    return f"{tier:g}"


# The compact forms stay positional lists, and a game's state stays a dict, on purpose: both are
# written to the changelog as JSON every batch (partitioned.encode_game, the live engine's
# checkpoints) and come back as lists and dicts, so a named record could not be read by name after
# a restore without a conversion on every path; and naming them buys no speed: a NamedTuple line
# payload measured 9,055 lines/s of CPU against 9,420 for the list (bench.engine_rate, 60,000
# lines, median of 3 interleaved runs, CPU time: -4%, within this shared machine's noise). Fields:
#   L: kind, book, market, side, line, price_american, price_decimal, novig_prob, ingested_us,
#      source_event_id
#   S: kind, source, book, market, side, bets_pct, money_pct, bets, total_bets, ingested_us,
#      source_event_id
#   G: kind, status, home_score, away_score, ingested_us, source_event_id
def line_payload(line: dict[str, Any]) -> tuple[int, list[Any]]:
    """(event time µs, the engine's compact form) of a staged odds line."""
    t = to_us(line["event_time"])
    return t, [
        "L",
        line["book"],
        line["market"],
        line["side"],
        line.get("line"),
        int(line["price_american"]),
        float(line["price_decimal"]),
        line.get("novig_prob"),
        to_us(line["ingested_at"]) if line.get("ingested_at") else t,
        line.get("source_event_id") or "",
    ]


def split_payload(split: dict[str, Any]) -> tuple[int, list[Any]]:
    """(event time µs, the engine's compact form) of a staged betting split."""
    t = to_us(split["event_time"])
    return t, [
        "S",
        split["source"],
        split.get("book") or "",
        split["market"],
        split["side"],
        float(split["bets_pct"]),
        None if split.get("money_pct") is None else float(split["money_pct"]),
        split.get("bets"),
        split.get("total_bets"),
        to_us(split["ingested_at"]) if split.get("ingested_at") else t,
        split.get("source_event_id") or "",
    ]


def game_payload(game: dict[str, Any]) -> tuple[int, list[Any]]:
    """(event time µs, the engine's compact form) of a staged game state."""
    t = to_us(game.get("event_time") or game.get("ingested_at") or game["commence_time"])
    return t, [
        "G",
        str(game.get("status") or "").lower(),
        game.get("home_score"),
        game.get("away_score"),
        to_us(game["ingested_at"]) if game.get("ingested_at") else t,
        game.get("source_event_id") or "",
    ]


PAYLOAD = {"line": line_payload, "split": split_payload, "game": game_payload}


class FeatureEngine:
    """Per-game incremental computation of velocity, steam, sharp signals, consensus, vectors."""

    def __init__(self, settings: FeatureSettings | None = None) -> None:
        self.settings = settings or FeatureSettings()
        s = self.settings
        self._windows = sorted(set(s.velocity_windows_minutes))
        self._lateness = s.allowed_lateness_minutes * MINUTE_US
        self._steam_w = s.steam_window_minutes * MINUTE_US
        self._rlm_l = s.rlm_lookback_minutes * MINUTE_US
        self._horizon = s.consensus_quote_horizon_minutes * MINUTE_US
        self._vmax = max(self._windows)
        # History needed behind the current instant: the largest window any feature looks back.
        self._keep = max(self._vmax * MINUTE_US, self._steam_w, self._rlm_l)
        self._tiers = sorted(s.rlm_tiers)
        # RLM needs a real move: the smallest net move of the primary series that counts.
        self._rlm_min = {
            m: s.rlm_min_move_cents if u == "cents" else s.rlm_min_move_points
            for m, u in PRIMARY_UNIT.items()
        }
        self._games: dict[str, dict[str, Any]] = {}
        self._late: list[dict[str, Any]] = []
        self.late_count = 0

    # ------------------------------------------------------------------ public API

    def process_line(self, line: dict[str, Any]) -> list[Output]:
        """Accept one staged odds line; return the outputs released by the advanced watermark."""
        t, payload = line_payload(line)
        return self._accept(line, t, payload)

    def process_split(self, split: dict[str, Any]) -> list[Output]:
        """Accept one staged betting split (one side of one market at one source/book)."""
        t, payload = split_payload(split)
        return self._accept(split, t, payload)

    def process_game(self, game: dict[str, Any]) -> list[Output]:
        """Accept one game state; a final one fills the targets of the feature vectors."""
        t, payload = game_payload(game)
        return self._accept(game, t, payload)

    def flush(self, game_id: str | None = None) -> list[Output]:
        """End of input: release every buffered event (of one game, or of all games)."""
        out: list[Output] = []
        ids = [game_id] if game_id is not None else sorted(self._games)
        for gid in ids:
            g = self._games.get(gid)
            if g is not None and g["buf"]:
                self._release(g, None, out)
        return out

    def buffered(self, game_id: str) -> bool:
        """Whether the game holds instants not yet released."""
        g = self._games.get(game_id)
        return g is not None and bool(g["buf"])

    def end(self, game_id: str) -> list[Output]:
        """End of the game's input: release its buffer, then settle a score held for first pitch.

        Only at the end of the input (a backfill, a test) or at expiry: before that, a quiet
        game may still get pre-game lines, and its vectors must wait for first pitch."""
        out = self.flush(game_id)
        g = self._games.get(game_id)
        if g is not None and g["closing"] is None and g.get("pending_final") is not None:
            self._close(g, out)
            self._settle_pending(g, out)
        return out

    def has_pending_final(self, game_id: str) -> bool:
        """Whether a score waits for the game's first pitch (``end`` would settle it)."""
        g = self._games.get(game_id)
        return g is not None and g["closing"] is None and g.get("pending_final") is not None

    def expire(self, before: datetime) -> list[Output]:
        """Drop games whose first pitch (else last event) is before ``before``.

        Their buffered events are released first, so expiring never loses an output. A final
        state does not drop a game by itself: it can arrive before the game's last lines (another
        topic; captures such as Pinnacle's carry the final score on every pre-game row), and a
        game dropped while its lines still come would restart from empty state.
        """
        cut = to_us(before)
        out: list[Output] = []
        for gid in sorted(self._games):
            g = self._games[gid]
            ref = g["commence"] if g["commence"] is not None else g["max"]
            if ref is not None and ref < cut:
                out += self.end(gid)
                del self._games[gid]
        return out

    def state_size(self) -> int:
        """Number of stored entries (history and median points, quotes, splits, buffered events)."""
        n = 0
        for g in self._games.values():
            n += len(g["buf"])
            for per_book in g["hist"].values():
                for h in per_book.values():
                    n += len(h)
            for h in g.get("mhist", {}).values():
                n += len(h)
            for per_book in g["quotes"].values():
                n += len(per_book)
            for streams in g["splits"].values():
                for sides in streams.values():
                    n += len(sides)
        return n

    def game_ids(self) -> list[str]:
        return sorted(self._games)

    def snapshot(self, game_id: str) -> dict[str, Any]:
        """The game's whole state as plain dicts/lists/numbers/strings (JSON-serializable)."""
        return copy.deepcopy(self._games[game_id])

    def restore(self, game_id: str, state: dict[str, Any]) -> None:
        """Install a state taken by ``snapshot`` (e.g. read back from the changelog)."""
        g = copy.deepcopy(state)
        # JSON turns the buffer's lists back into lists already; only the heap order matters.
        heapq.heapify(g["buf"])
        self._games[game_id] = g

    def drain_late(self) -> list[dict[str, Any]]:
        """Late events seen since the last call (game, kind, event time, watermark); cleared."""
        late, self._late = self._late, []
        return late

    # ------------------------------------------------------------------ live mode (live.py)

    def game(self, game_id: str) -> dict[str, Any] | None:
        """The game's live state (``live.LiveEngine`` works on it), or None."""
        return self._games.get(game_id)

    def create_game(self, rec: dict[str, Any]) -> dict[str, Any]:
        g = self._games[rec["game_id"]] = self._new_game(rec)
        return g

    def replace_game(self, game_id: str, g: dict[str, Any]) -> None:
        heapq.heapify(g["buf"])
        self._games[game_id] = g

    @staticmethod
    def note_commence(g: dict[str, Any], rec: dict[str, Any]) -> None:
        """Learn the first pitch from a record when the game did not know it yet."""
        if g["commence"] is None and rec.get("commence_time") is not None:
            g["commence"] = to_us(rec["commence_time"])

    def apply_instants(self, g: dict[str, Any], items: list[list[Any]], out: list[Output]) -> None:
        """Apply ``items`` ([t, seq, payload], sorted by time) instant by instant, at once.

        All records of one instant are applied together, in the fixed order of ``_sort_key``,
        as the buffered path does; nothing is held back."""
        i, n = 0, len(items)
        while i < n:
            t = items[i][0]
            j = i + 1
            while j < n and items[j][0] == t:
                j += 1
            group = [item[2] for item in items[i:j]]
            if len(group) > 1:
                group.sort(key=_sort_key)
            self._instant(g, t, group, out)
            if g["max"] is None or t > g["max"]:
                g["max"] = t
            i = j

    # ------------------------------------------------------------------ buffering

    def _new_game(self, rec: dict[str, Any]) -> dict[str, Any]:
        ct = rec.get("commence_time")
        return {
            "game_id": rec["game_id"],
            "commence": to_us(ct) if ct is not None else None,
            "home": rec.get("home_team"),
            "away": rec.get("away_team"),
            "max": None,
            "wm": None,
            "seq": 0,
            "buf": [],
            "late": 0,
            "hist": {},
            "mhist": {},
            "quotes": {},
            "lastq": {},
            "moved": {},
            "steam": {},
            "splits": {},
            "rlm": {},
            "rlm_held": {},
            "closing": None,
            "final": False,
        }

    def _accept(self, rec: dict[str, Any], t: int, payload: list[Any]) -> list[Output]:
        gid = rec["game_id"]
        g = self._games.get(gid)
        if g is None:
            g = self._games[gid] = self._new_game(rec)
        elif g["commence"] is None and rec.get("commence_time") is not None:
            g["commence"] = to_us(rec["commence_time"])
        wm = g["wm"]
        if wm is not None and t < wm:
            g["late"] += 1
            self.late_count += 1
            self._late.append(
                {
                    "game_id": gid,
                    "kind": payload[0],
                    "event_time": from_us(t),
                    "watermark": from_us(wm),
                }
            )
            return []
        g["seq"] += 1
        heapq.heappush(g["buf"], [t, g["seq"], payload])
        if g["max"] is None or t > g["max"]:
            g["max"] = t
            new_wm = t - self._lateness
            if wm is None or new_wm > wm:
                g["wm"] = new_wm
                if g["buf"][0][0] < new_wm:
                    out: list[Output] = []
                    self._release(g, new_wm, out)
                    return out
        return []

    def _release(self, g: dict[str, Any], upto: int | None, out: list[Output]) -> None:
        """Apply buffered instants strictly before ``upto`` (all when None), in time order."""
        buf = g["buf"]
        while buf and (upto is None or buf[0][0] < upto):
            t = buf[0][0]
            group = []
            while buf and buf[0][0] == t:
                group.append(heapq.heappop(buf)[2])
            if len(group) > 1:
                group.sort(key=_sort_key)
            self._instant(g, t, group, out)
        if upto is None and g["max"] is not None:
            # Nothing older than what was released may be merged afterwards.
            g["wm"] = max(g["wm"] if g["wm"] is not None else g["max"], g["max"] + 1)

    # ------------------------------------------------------------------ one instant

    def _instant(
        self, g: dict[str, Any], t: int, group: list[list[Any]], out: list[Output]
    ) -> None:
        if g["closing"] is None and g["commence"] is not None and t > g["commence"]:
            self._close(g, out)
            self._settle_pending(g, out)
        gid = g["game_id"]
        t_dt = from_us(t)

        # 1. lines: the last record of each key at this instant wins
        line_final: dict[tuple[str, str, str], list[Any]] = {}
        split_final: dict[tuple[str, str, str, str], list[Any]] = {}
        games: list[list[Any]] = []
        for p in group:
            kind = p[0]
            if kind == "L":
                line_final[(p[2], p[3], p[1])] = p
            elif kind == "S":
                split_final[(p[3], p[1], p[2], p[4])] = p
            else:
                games.append(p)

        changed_sides: set[tuple[str, str]] = set()
        # market -> book -> unit that changed ("points" wins over "cents" for spread/total)
        moved: dict[str, dict[str, str]] = {}
        series: set[str] = set()  # histories ("market|unit") that got a new value
        for (market, side, book), p in line_final.items():
            quotes = g["quotes"].setdefault(f"{market}|{side}", {})
            q = [t, p[5], p[4], p[7], p[6]]
            old = quotes.get(book)
            g["lastq"].setdefault(market, {})[book] = t
            if old is None or old[1] != q[1] or old[2] != q[2] or old[3] != q[3]:
                changed_sides.add((market, side))
            quotes[book] = q
            if side != CANONICAL_SIDE[market]:
                continue
            c = cents(p[5])
            if market == "moneyline":
                if self._append(g, market, "cents", book, t, c, series):
                    moved.setdefault(market, {})[book] = "cents"
            else:
                pts_changed = p[4] is not None and self._append(
                    g, market, "points", book, t, p[4], series
                )
                c_changed = self._append(g, market, "cents", book, t, c, series)
                if pts_changed:
                    moved.setdefault(market, {})[book] = "points"
                elif c_changed:
                    moved.setdefault(market, {})[book] = "cents"

        for key in sorted(series):
            self._append_median(g, key, t)

        # 2. splits
        split_updates: list[tuple[str, str, str, list[Any]]] = []
        for (market, source, book, side), p in sorted(split_final.items()):
            stream = f"{source}|{book}"
            sides = g["splits"].setdefault(market, {}).setdefault(stream, {})
            sides[side] = [t, p[5], p[6], p[7], p[8]]
            split_updates.append((market, stream, side, sides[side]))

        # 3. velocity per book, then the cross-book median
        for market in sorted(moved):
            books = moved[market]
            units = set(books.values())
            for book in sorted(books):
                unit = books[book]
                h = g["hist"][f"{market}|{unit}"][book]
                self._emit_velocity(out, gid, market, book, unit, t, t_dt, h)
            med_unit = "points" if "points" in units else "cents"
            self._emit_median_velocity(out, g, market, med_unit, t, t_dt)

        # 4. steam on the primary series
        for market in sorted(moved):
            if PRIMARY_UNIT[market] in moved[market].values():
                self._steam(out, g, market, t, t_dt)

        # 5. consensus of every side that changed
        for market, side in sorted(changed_sides):
            self._emit_consensus(out, g, market, side, t_dt)

        # 6. sharp action on each split update
        for market, stream, side, rec in split_updates:
            self._sharp(out, g, market, stream, side, rec, t, t_dt)

        # 7. reverse line movement where the line or a split changed
        rlm_markets = {m for m, books in moved.items() if PRIMARY_UNIT[m] in books.values()}
        rlm_markets.update(m for m, _, _, _ in split_updates)
        for market in sorted(rlm_markets):
            self._rlm(out, g, market, t, t_dt)

        # 8. games: a final state fills the targets
        for p in games:
            if p[1] in _FINAL and not g["final"]:
                if g["closing"] is None and g["commence"] is not None and t <= g["commence"]:
                    # A score before first pitch (captures such as Pinnacle's carry it on every
                    # pre-game row): the vectors are as of first pitch, so they wait for it.
                    g.setdefault("pending_final", [p[2], p[3]])
                    continue
                if g["closing"] is None:
                    self._close(g, out)
                g["final"] = True
                self._emit_final(out, g, p[2], p[3])

    def _append(
        self,
        g: dict[str, Any],
        market: str,
        unit: str,
        book: str,
        t: int,
        v: float,
        series: set[str],
    ) -> bool:
        """Add a value to a key's history if it changed (noting its series in ``series``)."""
        key = f"{market}|{unit}"
        per_book = g["hist"].setdefault(key, {})
        h = per_book.get(book)
        if h is None:
            per_book[book] = [[t, v]]
            series.add(key)
            return True
        if h[-1][1] == v:
            return False
        if unit == PRIMARY_UNIT[market]:
            g["moved"][market] = True
        series.add(key)
        self._push(h, t, v)
        return True

    def _push(self, h: History, t: int, v: float) -> None:
        """Append a point; prune what no window can reach (keeps the value at the cut)."""
        h.append([t, v])
        cut = t - self._keep
        if len(h) > 2 and h[1][0] <= cut:
            i = bisect_right(h, cut, key=_T)
            del h[: i - 1]

    def _append_median(self, g: dict[str, Any], key: str, t: int) -> None:
        """Record the series' cross-book median at ``t`` if it changed.

        The median of the books' as-of values is a step function that can only change at an
        instant where some book's value changed, so keeping its own history answers "the
        median at x" with one bisection instead of one per book and a sort (it was a quarter
        of the engine's time). Books without a value yet at x take no part, as before.
        """
        mh = self._medians(g, key)
        m = _median([h[-1][1] for h in g["hist"][key].values()])
        if mh[-1][1] != m:
            self._push(mh, t, m)

    def _medians(self, g: dict[str, Any], key: str) -> History:
        """The series' cross-book median history (rebuilt for state written before it was
        kept: the same as-of medians, at every instant a book's value changed)."""
        mh = g.setdefault("mhist", {}).get(key)
        if mh is None:
            per_book = g["hist"][key]
            mh = []
            for x in sorted({p[0] for h in per_book.values() for p in h}):
                vals = [v for h in per_book.values() if (v := _asof(h, x)) is not None]
                m = _median(vals)
                if not mh or mh[-1][1] != m:
                    mh.append([x, m])
            g["mhist"][key] = mh
        return mh

    # ------------------------------------------------------------------ features

    def _emit_velocity(
        self,
        out: list[Output],
        gid: str,
        market: str,
        book: str,
        unit: str,
        t: int,
        t_dt: datetime,
        h: History,
    ) -> None:
        value = h[-1][1]
        side = CANONICAL_SIDE[market]
        for w in self._windows:
            before, base = _window(h, t, t - w * MINUTE_US)
            change = value - base
            out.append(
                (
                    TOPIC_VELOCITY,
                    {
                        "game_id": gid,
                        "market": market,
                        "side": side,
                        "book": book,
                        "window_minutes": w,
                        "event_time": t_dt,
                        "unit": unit,
                        "value": value,
                        "value_before": before,
                        "change": change,
                        "velocity": change / w,
                    },
                )
            )

    def _emit_median_velocity(
        self, out: list[Output], g: dict[str, Any], market: str, unit: str, t: int, t_dt: datetime
    ) -> None:
        mh = self._medians(g, f"{market}|{unit}")
        value = mh[-1][1]
        side = CANONICAL_SIDE[market]
        for w in self._windows:
            before, base = _window(mh, t, t - w * MINUTE_US)
            change = value - base
            out.append(
                (
                    TOPIC_VELOCITY,
                    {
                        "game_id": g["game_id"],
                        "market": market,
                        "side": side,
                        "book": "median",
                        "window_minutes": w,
                        "event_time": t_dt,
                        "unit": unit,
                        "value": value,
                        "value_before": before,
                        "change": change,
                        "velocity": change / w,
                    },
                )
            )

    def _steam(
        self, out: list[Output], g: dict[str, Any], market: str, t: int, t_dt: datetime
    ) -> None:
        s = self.settings
        unit = PRIMARY_UNIT[market]
        thr = s.steam_threshold_cents if unit == "cents" else s.steam_threshold_points
        x = t - self._steam_w
        per_book = g["hist"][f"{market}|{unit}"]
        qualifying: dict[str, list[tuple[str, float, float]]] = {}
        for book, h in per_book.items():
            _, base = _window(h, t, x)
            net = h[-1][1] - base
            if abs(net) >= thr:
                d = favoured_side(market, net)
                assert d is not None
                qualifying.setdefault(d, []).append((book, net, base))
        active = g["steam"].setdefault(market, {})
        for d in sorted(qualifying):
            q = qualifying[d]
            if len(q) < s.steam_min_books:
                continue
            last = active.get(d)
            active[d] = t
            if last is not None and t - last < self._steam_w:
                continue  # the same move continues: announced once
            crossings = []
            for book, net, base in q:
                sign = 1.0 if net > 0 else -1.0
                h = per_book[book]
                i = bisect_right(h, x, key=_T)
                for when, v in h[i:]:
                    if (v - base) * sign >= thr:
                        crossings.append((when, book))
                        break
            crossings.sort()
            lastq = g["lastq"].get(market, {})
            quoting = sum(1 for when in lastq.values() if when >= t - self._horizon)
            out.append(
                (
                    TOPIC_STEAM,
                    {
                        "move_id": f"{g['game_id']}|{market}|{d}|{t_dt.isoformat()}",
                        "game_id": g["game_id"],
                        "market": market,
                        "direction": d,
                        "detected_at": t_dt,
                        "window_minutes": s.steam_window_minutes,
                        "books": [b for _, b in crossings],
                        "first_mover": crossings[0][1],
                        "first_move_at": from_us(crossings[0][0]),
                        "magnitude": _median([abs(net) for _, net, _ in q]),
                        "unit": unit,
                        "confidence": len(q) / quoting,
                        "books_quoting": quoting,
                    },
                )
            )

    def _emit_consensus(
        self, out: list[Output], g: dict[str, Any], market: str, side: str, t_dt: datetime
    ) -> None:
        quotes = g["quotes"][f"{market}|{side}"]
        novig = [q[3] for q in quotes.values() if q[3] is not None]
        if not novig:
            return  # no book knows both sides yet: there is no no-vig consensus to report
        best_book, best = None, None
        for book in sorted(quotes):
            q = quotes[book]
            if best is None or q[4] > best[4]:
                best_book, best = book, q
        assert best is not None and best_book is not None
        lines = [q[2] for q in quotes.values() if q[2] is not None]
        out.append(
            (
                TOPIC_CONSENSUS,
                {
                    "game_id": g["game_id"],
                    "market": market,
                    "side": side,
                    "event_time": t_dt,
                    "median_novig_prob": _median(novig),
                    "spread_novig_prob": max(novig) - min(novig),
                    "best_price_american": best[1],
                    "best_book": best_book,
                    "book_count": len(quotes),
                    "median_line": _median(lines) if lines else None,
                },
            )
        )

    def _net_move(self, g: dict[str, Any], market: str, t: int) -> float | None:
        """Net move of the cross-book median of the primary series over the RLM lookback."""
        key = f"{market}|{PRIMARY_UNIT[market]}"
        if not g["hist"].get(key):
            return None
        mh = self._medians(g, key)
        _, base = _window(mh, t, t - self._rlm_l)
        return mh[-1][1] - base

    def _sharp(
        self,
        out: list[Output],
        g: dict[str, Any],
        market: str,
        stream: str,
        side: str,
        rec: list[Any],
        t: int,
        t_dt: datetime,
    ) -> None:
        s = self.settings
        _, bets_pct, money_pct, bets, total_bets = rec
        if money_pct is None:
            return
        n = total_bets if total_bets is not None else bets
        if n is None or n < s.sharp_moderate_min_bets:
            return
        diff = money_pct - bets_pct
        if diff >= s.sharp_premium and n >= s.sharp_premium_min_bets:
            tier = "premium"
        elif diff >= s.sharp_strong:
            tier = "strong"
        elif diff >= s.sharp_moderate:
            tier = "moderate"
        else:
            return
        move = self._net_move(g, market, t)
        out.append(
            self._signal(
                g, market, "sharp_action", side, tier, t_dt, stream, bets_pct, money_pct, bets, move
            )
        )

    def _signal(
        self,
        g: dict[str, Any],
        market: str,
        kind: str,
        side: str,
        tier: str,
        t_dt: datetime,
        stream: str,
        tickets: float,
        money: float | None,
        bets: int | None,
        move: float | None,
    ) -> Output:
        source, book = stream.split("|", 1)
        return (
            TOPIC_SHARP,
            {
                "signal_id": (
                    f"{g['game_id']}|{market}|{kind}|{side}|{tier}|{source}|{book}|"
                    f"{t_dt.isoformat()}"
                ),
                "game_id": g["game_id"],
                "market": market,
                "signal_type": kind,
                "side": side,
                "tier": tier,
                "event_time": t_dt,
                "tickets_pct": tickets,
                "money_pct": money,
                "bets": bets,
                "line_move": move,
                "unit": PRIMARY_UNIT[market] if move is not None else None,
                "split_source": source,
                "book": book or None,
            },
        )

    @staticmethod
    def _side_split(sides: dict[str, list[Any]], side: str) -> tuple[Any, Any, Any]:
        """(tickets %, money %, bets) of a side, from the other side's record when missing."""
        rec = sides.get(side)
        if rec is not None:
            return rec[1], rec[2], rec[3]
        other = sides.get(OTHER_SIDE[side])
        if other is None:
            return None, None, None
        return 100.0 - other[1], (None if other[2] is None else 100.0 - other[2]), None

    def _rlm(
        self, out: list[Output], g: dict[str, Any], market: str, t: int, t_dt: datetime
    ) -> None:
        streams = g["splits"].get(market)
        if not streams:
            return
        move = self._net_move(g, market, t)
        state = g["rlm"].setdefault(market, {})  # stream -> condition now: [side, tier] or None
        # stream -> [side, tier, last instant it held] (older snapshots have no "rlm_held")
        episodes = g.setdefault("rlm_held", {}).setdefault(market, {})
        fav = None
        if move and abs(move) >= self._rlm_min[market]:  # a move too small to be RLM is drift
            fav = favoured_side(market, move)
        for stream in sorted(streams):
            sides = streams[stream]
            cond = None
            if fav is not None:
                other_tickets = self._side_split(sides, OTHER_SIDE[fav])[0]
                if other_tickets is not None:
                    passed = [tr for tr in self._tiers if other_tickets > tr]
                    if passed:
                        cond = [fav, _tier_label(passed[-1])]
            prev = state.get(stream)
            state[stream] = cond
            if cond is None:
                continue
            # One signal per RLM, as for steam: a condition that comes back with the same side
            # and tier within a lookback of when it last held is the same move (a median
            # hovering at the minimum must not re-raise it at every cent of drift).
            last = episodes.get(stream)
            episodes[stream] = [cond[0], cond[1], t]
            if (
                last is not None
                and last[:2] == cond
                and (prev is not None or t - last[2] < self._rlm_l)
            ):
                continue
            tickets, money, bets = self._side_split(sides, cond[0])
            out.append(
                self._signal(
                    g,
                    market,
                    "reverse_line_movement",
                    cond[0],
                    cond[1],
                    t_dt,
                    stream,
                    tickets,
                    money,
                    bets,
                    move,
                )
            )

    # ------------------------------------------------------------------ feature vectors

    def _close(self, g: dict[str, Any], out: list[Output]) -> None:
        """Freeze each market's features as of first pitch and emit the pre-game vectors."""
        at = g["commence"] if g["commence"] is not None else (g["max"] or 0)
        closing: dict[str, dict[str, Any]] = {}
        markets = sorted({k.split("|")[0] for k in g["quotes"]} | set(g["splits"]))
        for market in markets:
            closing[market] = self._features(g, market, at)
        g["closing"] = closing
        for market in markets:
            out.append((TOPIC_VECTOR, self._vector(g, market, None, None)))

    def _features(self, g: dict[str, Any], market: str, at: int) -> dict[str, Any]:
        gaps = [
            rec[2] - rec[1]
            for sides in g["splits"].get(market, {}).values()
            for rec in sides.values()
            if rec[2] is not None
        ]
        rlm = any(v is not None for v in g["rlm"].get(market, {}).values())
        steam = any(at - last < self._steam_w for last in g["steam"].get(market, {}).values())
        per_book = g["hist"].get(f"{market}|{PRIMARY_UNIT[market]}", {})
        velocity = consistency = None
        if per_book:
            w = self._vmax * MINUTE_US
            if g["moved"].get(market):
                mh = self._medians(g, f"{market}|{PRIMARY_UNIT[market]}")
                _, base = _window(mh, at, at - w)
                velocity = (mh[-1][1] - base) / self._vmax
            if len(per_book) >= 2:
                nets = []
                for h in per_book.values():
                    _, base = _window(h, at, at - w)
                    nets.append(h[-1][1] - base)
                med = _median(nets)
                sign = (med > 0) - (med < 0)
                consistency = sum(1 for n in nets if (n > 0) - (n < 0) == sign) / len(nets)
        canon = g["quotes"].get(f"{market}|{CANONICAL_SIDE[market]}", {})
        novig = [q[3] for q in canon.values() if q[3] is not None]
        decs = [q[4] for q in canon.values()]
        lines = [q[2] for q in canon.values() if q[2] is not None]
        return {
            "sharp_action_score": max(gaps) if gaps else 0.0,
            "rlm_indicator": rlm,
            "steam_detected": steam,
            "line_velocity": velocity,
            "movement_consistency": consistency,
            "cross_book_consensus": _median(novig) if novig else None,
            "close_decimal": _median(decs) if decs else None,
            "close_line": _median(lines) if lines else None,
        }

    def _vector(
        self, g: dict[str, Any], market: str, outcome: str | None, pnl: float | None
    ) -> dict[str, Any]:
        f = g["closing"][market]
        at = g["commence"] if g["commence"] is not None else (g["max"] or 0)
        return {
            "game_id": g["game_id"],
            "market": market,
            "feature_set_version": FEATURE_SET_VERSION,
            "event_time": from_us(at),
            "home_team": g["home"],
            "away_team": g["away"],
            "sharp_action_score": f["sharp_action_score"],
            "rlm_indicator": f["rlm_indicator"],
            "steam_detected": f["steam_detected"],
            "line_velocity": f["line_velocity"],
            "movement_consistency": f["movement_consistency"],
            "cross_book_consensus": f["cross_book_consensus"],
            "team_sharp_action_history": None,
            "actual_outcome": outcome,
            "profit_loss": pnl,
        }

    def _settle_pending(self, g: dict[str, Any], out: list[Output]) -> None:
        pending = g.get("pending_final")
        if pending is not None and not g["final"]:
            g["final"] = True
            self._emit_final(out, g, pending[0], pending[1])

    def _emit_final(self, out: list[Output], g: dict[str, Any], home: Any, away: Any) -> None:
        for market in sorted(g["closing"]):
            f = g["closing"][market]
            outcome = settle(market, home, away, f["close_line"])
            pnl = None
            if outcome is not None and f["close_decimal"] is not None:
                pnl = {"win": f["close_decimal"] - 1.0, "loss": -1.0, "push": 0.0}[outcome]
            out.append((TOPIC_VECTOR, self._vector(g, market, outcome, pnl)))


def settle(market: str, home: int | None, away: int | None, line: float | None) -> str | None:
    """Result of a bet on the canonical side (home, home spread, over) at the closing line."""
    if home is None or away is None:
        return None
    if market == "moneyline":
        margin: float = home - away
    elif line is None:
        return None
    elif market == "spread":
        margin = home + line - away
    else:
        margin = home + away - line
    return "win" if margin > 0 else "loss" if margin < 0 else "push"


def feed(engine: FeatureEngine, events: Iterable[tuple[str, dict[str, Any]]]) -> list[Output]:
    """Replay helper for tests and backfills: feed ("line"|"split"|"game", record) pairs, flush."""
    handlers = {
        "line": engine.process_line,
        "split": engine.process_split,
        "game": engine.process_game,
    }
    out: list[Output] = []
    for kind, rec in events:
        out += handlers[kind](rec)
    out += engine.flush()
    for gid in engine.game_ids():
        out += engine.end(gid)
    return out
