"""The staging hot path for Pinnacle line-history rows (source ``file``, format ``pinnacle``).

Why: a backfill replays a season of ~250,000 rows, one raw record each, and the generic path
(core/formats/pinnacle.py → record dicts → validate.py → quality.py → encode → de-dup facts) costs
~150 µs a row, most of it building six line dicts and a game dict, validating, pairing and
scoring them, and encoding them field by field. A row is mostly what the rows before it were: its
game's cells (first pitch, teams, doubleheader, scores, pitchers) repeat on every row of the game,
and each market's cells (points and two prices) move on a grid of a few hundred values. So:
- the header is read once per distinct header text (:class:`_Header`: cell positions);
- cells are split without the csv module (a row with a quote goes to the generic path);
- a game is computed once per distinct game cells (:class:`_Game`: its id, the head run of its
  lines' Avro bytes, the constant run of its Game record, the texts of its de-dup facts);
- a market's lines are computed once per distinct market cells (:data:`PlanLine`: side, points,
  price, no-vig, the middle run of the Avro bytes, the de-dup value text, whether the gate's
  price conditions hold);
- a row then costs its time stamp (parsed, and encoded once as the tail run of its records), a few
  lookups, and the joins of its records and facts. ~20 µs a row (DESIGN.md, "Staging").

Exactness: every cached decision is made by the generic functions themselves on the cache miss
(``row_game``, ``_pair``, ``parse_points``, ``make_line``/``make_game``, ``validate_line``,
``pair_and_novig``, ``validate_game``, ``fact_of``), on cells that are the entry's key, so a hit
is what computing it again would give. A row of which any part is refused at parse or validation
level — a quote, a cell count that differs, an unreadable time or team, a bad price or points, a
partly filled market, an implausible line or pair, a bad score, a future time — returns None and
the processor takes the generic path, which keeps every reason. The quality gate is decided here
by the generic scorers on a record dict built for the part that is not plainly perfect.
tests/unit/test_staging_fastpath_pinnacle.py checks that both paths make the same bytes, facts
and refusals.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any, Final, NamedTuple

from core.domain.odds import PriceError, parse_points
from core.domain.timeparse import TimeParseError, parse_utc
from core.formats.base import (
    MONEYLINE,
    SPREAD,
    TOTAL,
    Context,
    GameRef,
    Parsed,
    ParseError,
    Reject,
    make_game,
    make_line,
    to_int_or_none,
)
from core.formats.csvrow import header_index
from core.formats.pinnacle import BOOK, REQUIRED, _pair, row_game
from schemas.codec import Codec
from streams.staging.dedupe import _micros, fact_of
from streams.staging.fastpath import LINE_RUNS, Staged, quarantined
from streams.staging.quality import (
    FRESH,
    MAX_GOOD_OVERROUND,
    Timing,
    score_game,
    score_line,
)
from streams.staging.validate import pair_and_novig, validate_game, validate_line

LINE: Final = "oddsflow.staging.OddsLine"
GAME: Final = "oddsflow.staging.Game"
#: Game's fields in two runs: the game's own (the same on every row of it), then lineage and times.
GAME_RUNS: Final = (
    ("game_id", "home_team", "away_team", "commence_time", "game_number", "status",
     "home_score", "away_score", "home_pitcher", "away_pitcher"),
    ("source", "event_time", "ingested_at", "source_event_id"),
)  # fmt: skip
#: The cells a game is computed from, in this order (the optional ones may be absent).
GAME_COLUMNS: Final = (
    "EventDateTimeUTC", "AwayTeam", "HomeTeam", "DoubleHeaderGame",
    "FinalScoreAway", "FinalScoreHome", "AwayStartingPitcher", "HomeStartingPitcher",
)  # fmt: skip
#: Each market's cells (the generic parser's order: points first, then side 1 and side 2).
MARKET_COLUMNS: Final = (
    (MONEYLINE, ("MoneyUS1", "MoneyUS2")),
    (SPREAD, ("SpreadTeam1", "SpreadUS1", "SpreadUS2")),
    (TOTAL, ("TotalPoints", "TotalUSOver", "TotalUSUnder")),
)
SIDES: Final = {MONEYLINE: ("away", "home"), SPREAD: ("away", "home"), TOTAL: ("over", "under")}
#: Entries per cache before it is cleared: a season has ~2,500 games and a few thousand
#: distinct market cells; each entry is a few hundred bytes.
CACHE_MAX: Final = 16_384
HEADERS_MAX: Final = 64

#: A line of a market as it stages, whatever its game and time: what it writes — the
#: market-and-prices run of its Avro bytes, "market|side" and the value text of its de-dup fact
#: (UTF-8) — and what the gate needs of it: side, points, price, no-vig, and perfect: the gate's
#: price conditions hold (no-vig known, overround <= 1.10).
PlanLine = tuple[bytes, bytes, bytes, str, float | None, int, float | None, bool]
#: A market's lines at given cells (none: the market is not offered at that time).
Plan = tuple[PlanLine, ...]

# A reference time and context for the checks made once per cache entry: every time is the same
# aware instant, so the time checks pass and only the values decide (the row's own time is
# checked on each row).
_T0: Final = datetime.fromisoformat("2000-01-01T00:00:00+00:00")
_CTX0: Final = Context("-", "file", _T0, {})


class _Header(NamedTuple):
    """Where a header keeps what a row needs: its cell count and the cells' positions (an absent
    optional column points at the empty cell appended after the row's own)."""

    width: int
    entered: int
    game_cells: itemgetter[tuple[str, ...]]
    market_cells: tuple[tuple[str, itemgetter[tuple[str, ...]]], ...]


class _Game(NamedTuple):
    """What every row of one game shares."""

    ref: GameRef
    number: int
    status: str
    scores: tuple[int | None, int | None]  # home, away
    pitchers: tuple[str | None, str | None]  # home, away
    key: bytes  # the game id, the records' Kafka key
    head: bytes  # its lines' first Avro run: game, first pitch, teams, book
    body: bytes  # its Game record's first Avro run (header included)
    line_fact: bytes  # "OddsLine|<game id>|pinnacle|"
    game_fact: str  # "Game|<game id>"
    values: str  # its Game fact's value text
    commence_us: int


class PinnacleStager:
    """Pinnacle CSV row bytes → :class:`Staged`, or None for the generic path."""

    def __init__(self, codec: Codec) -> None:
        self._head, self._mid, self._tail = codec.run_encoders(LINE, LINE_RUNS)
        self._game_body, self._game_tail = codec.run_encoders(GAME, GAME_RUNS)
        # what passes, by header text, game cells, market cells (a refusal is not kept: its row
        # takes the generic path, which costs far more than computing the refusal again)
        self._headers: dict[str, _Header] = {}
        self._games: dict[tuple[str, ...], _Game] = {}
        self._plans: dict[str, dict[tuple[str, ...], Plan]] = {
            market: {} for market, _ in MARKET_COLUMNS
        }

    def stage(
        self,
        payload: object,
        ctx: Context,
        now: datetime,
        tolerance: timedelta,
        threshold: float | None,
        timing: Timing,
    ) -> Staged | None:
        """Parse, validate, gate (``threshold`` None: no gate) and encode one row."""
        header_text = ctx.request.get("header")
        if payload.__class__ is not bytes or not header_text or now.tzinfo is None:
            return None
        header = self._headers.get(header_text) or self._header(header_text)
        if header is None:
            return None
        try:  # UTF-8, a BOM tolerated (core.formats.base.payload_text), without the codec's lookup
            text = (payload[3:] if payload[:3] == _BOM else payload).decode()  # type: ignore[index]
        except UnicodeDecodeError:
            return None
        if '"' in text:  # quoted cells: the csv module, on the generic path
            return None
        cells = text.rstrip("\r\n").split(",")
        if len(cells) != header.width:
            return None
        cells.append("")  # what an absent optional column reads
        game_cells = header.game_cells(cells)
        game = self._games.get(game_cells) or self._game(game_cells)
        if game is None:
            return None
        try:
            et = row_time(cells[header.entered])
        except (TimeParseError, ValueError):
            return None
        if et > now + tolerance:  # future: every part refused, with the generic reasons
            return None
        plans = []
        for market, market_cells in header.market_cells:
            cache = self._plans[market]
            key = market_cells(cells)
            plan = cache.get(key)
            if plan is None:
                plan = self._plan(cache, market, key)
                if plan is None:
                    return None
            plans.append((market, plan))
        return self._finish(game, plans, et, ctx, threshold, timing)

    def _finish(
        self,
        game: _Game,
        plans: list[tuple[str, Plan]],
        et: datetime,
        ctx: Context,
        threshold: float | None,
        timing: Timing,
    ) -> Staged:
        """Gate lines then the game, encode what passes with its fact."""
        fetched, source, seid = ctx.fetched_at, ctx.source, ctx.event_id
        key, head, line_fact = game.key, game.head, game.line_fact
        et_us = _micros(et)
        commence_us = game.commence_us
        tail = self._tail(et, fetched, source, seid)
        fact_mid = f"\t{et_us}\t{commence_us}\t\t".encode()
        records: list[tuple[str, bytes, bytes]] = []
        facts: list[bytes] = []
        gated: list[Reject] = []
        gate = threshold is not None
        timely = timing.delay <= FRESH
        scored = gate and not (timely and et < game.ref.commence_time)
        for market, plan in plans:
            for mid, market_side, values, side, pts, price, novig, perfect in plan:
                if gate and (scored or not perfect):
                    # the generic scorer says whether it passes, and why not
                    rec = make_line(game.ref, BOOK, market, side, pts, price, et, ctx)
                    rec["novig_prob"] = novig
                    if quarantined(score_line, rec, timing, threshold, gated):  # type: ignore[arg-type]
                        continue
                records.append((LINE, key, b"".join((head, mid, tail))))
                facts.append(b"".join((line_fact, market_side, fact_mid, values)))
        # a final game of a history file, published on time, is perfect: no record, no scorer
        plain = not gate or (timely and game.status == "final" and timing.history)
        rec = None if plain else self._game_record(game, et, ctx)
        if rec is None or not quarantined(score_game, rec, timing, threshold, gated):  # type: ignore[arg-type]
            records.append((GAME, key, game.body + self._game_tail(source, et, fetched, seid)))
            tie = seid.replace("\t", " ")  # a game's de-dup tie-break (dedupe.fact_of)
            facts.append(f"{game.game_fact}\t{et_us}\t{commence_us}\t{tie}\t{game.values}".encode())
        return Staged(records, facts, gated, len(records), len(gated))

    def _header(self, text: str) -> _Header | None:
        """The positions of a header's cells (None: the generic path refuses its rows)."""
        try:
            index = header_index(text, REQUIRED)
            width = len(index)
            if sorted(index.values()) != list(range(width)):  # a repeated column name
                return None
        except ParseError:
            return None

        def at(names: tuple[str, ...]) -> itemgetter[tuple[str, ...]]:
            return itemgetter(*(index.get(c, width) for c in names))

        if len(self._headers) >= HEADERS_MAX:
            self._headers.clear()
        self._headers[text] = plan = _Header(
            width,
            index["EnteredDateTimeUTC"],
            at(GAME_COLUMNS),
            tuple((market, at(cols)) for market, cols in MARKET_COLUMNS),
        )
        return plan

    def _game(self, cells: tuple[str, ...]) -> _Game | None:
        """A game from its cells (GAME_COLUMNS), as core/formats/pinnacle.py reads it; None when the
        generic path refuses it (the row names no game, or a score is not one)."""
        commence, away, home, number, away_score, home_score, away_p, home_p = (
            c.strip() for c in cells
        )
        row = {"EventDateTimeUTC": commence, "AwayTeam": away, "HomeTeam": home,
               "DoubleHeaderGame": number}  # fmt: skip
        try:
            g, n = row_game(row, "")
        except ParseError:
            return None
        hs, aw = to_int_or_none(home_score), to_int_or_none(away_score)
        status = "final" if hs is not None and aw is not None else "scheduled"
        rec = make_game(g, n, status, _T0, _CTX0, home_score=hs, away_score=aw,
                        home_pitcher=home_p or None, away_pitcher=away_p or None)  # fmt: skip
        if validate_game(rec, now=None, future_tolerance=timedelta(0)) is not None:
            return None
        fact_key, _, commence_us, values, _ = fact_of(GAME, rec)
        gid = g.game_id
        try:  # a value the codec refuses (a score over 2**31): the generic path says so
            head = self._head(gid, g.commence_time, g.home, g.away, BOOK)
            body = self._game_body(*(rec[f] for f in GAME_RUNS[0]))
        except Exception:
            return None
        if len(self._games) >= CACHE_MAX:
            self._games.clear()
        self._games[cells] = game = _Game(
            g, n, status, (hs, aw), (rec["home_pitcher"], rec["away_pitcher"]), gid.encode(),
            head, body, f"OddsLine|{gid}|{BOOK}|".encode(), fact_key, values,
            commence_us,  # type: ignore[arg-type]
        )  # fmt: skip
        return game

    @staticmethod
    def _game_record(game: _Game, et: datetime, ctx: Context) -> dict[str, Any]:
        """The generic Game record of ``game`` at ``et``, for the scorer and its reasons."""
        (hs, aw), (hp, ap) = game.scores, game.pitchers
        return make_game(game.ref, game.number, game.status, et, ctx, home_score=hs,
                         away_score=aw, home_pitcher=hp, away_pitcher=ap)  # fmt: skip

    def _plan(
        self, cache: dict[tuple[str, ...], Plan], market: str, cells: tuple[str, ...]
    ) -> Plan | None:
        """A market's lines from its cells, as core/formats/pinnacle.py and validate.py decide them
        (none when the market is not offered); None when the generic path refuses a part of it."""
        stripped = tuple(c.strip() for c in cells)
        out = Parsed()
        prices = _pair(out, "", market, stripped)
        if prices is None:  # not offered at this time
            return self._keep(cache, cells, ())
        if out.rejects:
            return None
        pts: Any = None
        if market != MONEYLINE:
            pts = parse_points(stripped[0])
            if type(pts) is PriceError:
                return None
        first, second = SIDES[market]
        recs = [
            make_line(_GAME0, BOOK, market, first, pts, prices[0], _T0, _CTX0),
            make_line(_GAME0, BOOK, market, second, -pts + 0.0 if market == SPREAD else pts,
                      prices[1], _T0, _CTX0),
        ]  # fmt: skip
        for rec in recs:
            if validate_line(rec, now=None, future_tolerance=timedelta(0)) is not None:
                return None
        _, pair_rejects = pair_and_novig(recs)
        if pair_rejects:
            return None
        lines: list[PlanLine] = []
        for rec in recs:
            side, line, price, imp, novig = (
                rec["side"], rec["line"], rec["price_american"], rec["implied_prob"],
                rec["novig_prob"],
            )  # fmt: skip
            mid = self._mid(market, side, line, price, rec["price_decimal"], imp, novig)
            perfect = novig is not None and imp <= novig * MAX_GOOD_OVERROUND
            values = fact_of(LINE, rec)[3]
            lines.append((mid, f"{market}|{side}".encode(), values.encode(), side, line, price,
                          novig, perfect))  # fmt: skip
        return self._keep(cache, cells, tuple(lines))

    @staticmethod
    def _keep(cache: dict[tuple[str, ...], Plan], cells: tuple[str, ...], plan: Plan) -> Plan:
        if len(cache) >= CACHE_MAX:
            cache.clear()
        cache[cells] = plan
        return plan


#: A game for the checks made once per market plan (its lines' values do not depend on it).
_GAME0: Final = GameRef("-", _T0, "PIT", "STL")
#: UTF-8's byte order mark: payload_text ("utf-8-sig") drops one at the start of a payload.
_BOM: Final = b"\xef\xbb\xbf"


def row_time(cell: str) -> datetime:
    """``parse_utc(cell, assume_utc=True)``, quicker for the file's own time stamps
    ("2016-03-31 21:16:48.046999931+00:00", any number of digits): every row
    has its own, so parse_utc's memo only churns, and its fraction cut is a Python loop. For a
    cell ``YYYY-MM-DD HH:MM:SS.<digits>+00:00`` these are parse_utc's very steps (nothing to
    strip, no "Z", the fraction cut to 6 digits, fromisoformat, to UTC); anything else is
    parse_utc's. Raises TimeParseError, or ValueError for a date of that shape that is none."""
    if (
        cell.find(".") == 19
        and cell.endswith("+00:00")
        and cell[20:-6].isdigit()
        and not cell[0].isspace()
    ):
        return datetime.fromisoformat(cell if len(cell) <= 32 else cell[:26] + "+00:00").astimezone(
            UTC
        )
    return parse_utc(cell, assume_utc=True)
