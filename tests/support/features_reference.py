"""Reference (batch) implementation of the curated features, straight from the definitions.

Written independently of ``engine.py`` on purpose: it sees the whole input at once, works on
datetimes and timedeltas (the engine works on integer microseconds with pruned histories and a
watermark buffer), evaluates every as-of value by scanning full step functions, and imports
nothing from the engine. Brute force: meant for tests and audits, not for throughput.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from core.settings import FeatureSettings

Output = tuple[str, dict[str, Any]]
Step = list[tuple[datetime, Any]]  # one value per instant, ascending

_CANON = {"moneyline": "home", "spread": "home", "total": "over"}
_OPP = {"home": "away", "away": "home", "over": "under", "under": "over"}
_MAIN_UNIT = {"moneyline": "cents", "spread": "points", "total": "points"}


def _cents(a: int) -> float:
    return float(a - 100) if a >= 100 else float(a + 100)


def _med(xs: list[float]) -> float:
    xs = sorted(xs)
    k = len(xs)
    return xs[k // 2] if k % 2 == 1 else (xs[k // 2 - 1] + xs[k // 2]) / 2.0


def _value_at(step: Step, x: datetime) -> Any:
    """Last value at or before x; None before the first one (plain scan)."""
    found = None
    for when, v in step:
        if when > x:
            break
        found = v
    return found


def _money_side(market: str, move: float) -> str | None:
    if move == 0:
        return None
    if market == "total":
        return "over" if move > 0 else "under"
    return "away" if move > 0 else "home"


def _net(step: Step, t: datetime, w: timedelta) -> tuple[Any, float]:
    """(value at t − w or None, value(t) − reference) where the reference falls back to the
    first value inside (t − w, t] when nothing was quoted at t − w."""
    now = _value_at(step, t)
    before = _value_at(step, t - w)
    if before is not None:
        return before, now - before
    first = next(v for when, v in step if when > t - w)
    return None, now - first


def _median_step(steps: dict[str, Step], x: datetime) -> float | None:
    vals = [v for s in steps.values() if (v := _value_at(s, x)) is not None]
    return _med(vals) if vals else None


def _median_net(steps: dict[str, Step], t: datetime, w: timedelta) -> tuple[Any, float]:
    now = _median_step(steps, t)
    assert now is not None
    before = _median_step(steps, t - w)
    if before is not None:
        return before, now - before
    first_instant = min(s[0][0] for s in steps.values())
    first = _median_step(steps, first_instant)
    assert first is not None
    return None, now - first


def _settle(market: str, home: Any, away: Any, line: Any) -> str | None:
    if home is None or away is None:
        return None
    if market == "moneyline":
        margin = home - away
    elif line is None:
        return None
    elif market == "spread":
        margin = home + line - away
    else:
        margin = home + away - line
    if margin == 0:
        return "push"
    return "win" if margin > 0 else "loss"


def reference_features(
    lines: list[dict[str, Any]],
    splits: list[dict[str, Any]] | None = None,
    games: list[dict[str, Any]] | None = None,
    settings: FeatureSettings | None = None,
) -> list[Output]:
    """Every curated output of the given staged inputs, game by game."""
    splits = splits or []
    games = games or []
    out: list[Output] = []
    ids = sorted({r["game_id"] for r in [*lines, *splits, *games]})
    for gid in ids:
        out += _one_game(
            [r for r in lines if r["game_id"] == gid],
            [r for r in splits if r["game_id"] == gid],
            [r for r in games if r["game_id"] == gid],
            settings or FeatureSettings(),
        )
    return out


def _one_game(
    lines: list[dict[str, Any]],
    splits: list[dict[str, Any]],
    games: list[dict[str, Any]],
    cfg: FeatureSettings,
) -> list[Output]:
    return _Game(lines, splits, games, cfg).run()


def _line_order(r: dict[str, Any]) -> tuple[Any, ...]:
    return (
        r["event_time"],
        r.get("ingested_at") or r["event_time"],
        r.get("source_event_id") or "",
        r["book"],
        r["market"],
        r["side"],
        r["price_american"],
        -1e9 if r.get("line") is None else r["line"],
    )


def _split_order(r: dict[str, Any]) -> tuple[Any, ...]:
    return (
        r["event_time"],
        r.get("ingested_at") or r["event_time"],
        r.get("source_event_id") or "",
        r["source"],
        r.get("book") or "",
        r["market"],
        r["side"],
        r["bets_pct"],
        -1.0 if r.get("money_pct") is None else r["money_pct"],
    )


def _first(records: list[dict[str, Any]], field: str) -> Any:
    return next((r[field] for r in records if r.get(field)), None)


MARKETS = ("moneyline", "spread", "total")


class _Game:
    """One game's inputs as step functions, and its outputs instant by instant (:meth:`run`):
    velocity, steam, consensus, sharp action, reverse line movement, then a final's targets."""

    def __init__(
        self,
        lines: list[dict[str, Any]],
        splits: list[dict[str, Any]],
        games: list[dict[str, Any]],
        cfg: FeatureSettings,
    ) -> None:
        self.cfg = cfg
        self.out: list[Output] = []
        everything = [*lines, *splits, *games]
        self.gid = (lines or splits or games)[0]["game_id"]
        self.commence = _first(everything, "commence_time")
        self.home_team = _first(everything, "home_team")
        self.away_team = _first(everything, "away_team")
        self.lines = sorted(lines, key=_line_order)
        self.splits = sorted(splits, key=_split_order)
        self.games = games
        self._quotes()
        self._series()
        self._split_steps()
        self.instants = sorted(
            {r["event_time"] for r in [*self.lines, *self.splits]} | {_gtime(g) for g in games}
        )
        self.steam_last: dict[tuple[str, str], datetime] = {}
        self.rlm_state: dict[tuple[str, str], Any] = {}
        # last (side, tier) held, and when
        self.rlm_held: dict[tuple[str, str], tuple[Any, datetime]] = {}
        self.vectors_at: dict[str, dict[str, Any]] | None = None
        self.finished = False

    # -- step functions --------------------------------------------------------------------------

    def _quotes(self) -> None:
        """Quote step functions per (market, side, book): one record per instant, the last one
        wins; and when each book quoted each market."""
        self.quote_steps: dict[tuple[str, str, str], Step] = defaultdict(list)
        for r in self.lines:
            s = self.quote_steps[(r["market"], r["side"], r["book"])]
            q = (r["price_american"], r.get("line"), r.get("novig_prob"), r["price_decimal"])
            if s and s[-1][0] == r["event_time"]:
                s[-1] = (r["event_time"], q)
            else:
                s.append((r["event_time"], q))
        self.last_quote: dict[str, dict[str, list[datetime]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for r in self.lines:
            self.last_quote[r["market"]][r["book"]].append(r["event_time"])

    def _series(self) -> None:
        """Canonical series per (market, unit, book): kept only where the value changed."""
        self.series: dict[tuple[str, str], dict[str, Step]] = defaultdict(dict)
        for (market, side, book), s in self.quote_steps.items():
            if side != _CANON[market]:
                continue
            units = [("cents", lambda q: _cents(q[0]))]
            if market != "moneyline":
                units.append(("points", lambda q: q[1]))
            for unit, get in units:
                step: Step = []
                for when, q in s:
                    v = get(q)
                    if v is None:
                        continue
                    if not step or step[-1][1] != v:
                        step.append((when, v))
                if step:
                    self.series[(market, unit)][book] = step

    def _split_steps(self) -> None:
        self.split_steps: dict[tuple[str, str, str, str], Step] = defaultdict(list)
        for r in self.splits:
            s = self.split_steps[(r["market"], r["source"], r.get("book") or "", r["side"])]
            money = None if r.get("money_pct") is None else float(r["money_pct"])
            rec = (float(r["bets_pct"]), money, r.get("bets"), r.get("total_bets"))
            if s and s[-1][0] == r["event_time"]:
                s[-1] = (r["event_time"], rec)
            else:
                s.append((r["event_time"], rec))

    def changed_at(self, market: str, unit: str, book: str, t: datetime) -> bool:
        return any(when == t for when, _ in self.series.get((market, unit), {}).get(book, []))

    def main_steps(self, market: str, at: datetime) -> dict[str, Step]:
        """The market's main-unit series per book, up to ``at`` (books quoting by then)."""
        steps = {
            b: [(w, v) for w, v in s if w <= at]
            for b, s in self.series.get((market, _MAIN_UNIT[market]), {}).items()
        }
        return {b: s for b, s in steps.items() if s}

    # -- feature vectors -------------------------------------------------------------------------

    def features_at(self, market: str, at: datetime) -> dict[str, Any]:
        cfg = self.cfg
        gaps = []
        for (m, _src, _bk, _side), s in self.split_steps.items():
            rec = _value_at(s, at)
            if m == market and rec is not None and rec[1] is not None:
                gaps.append(rec[1] - rec[0])
        rlm_on = any(v is not None for (m, _), v in self.rlm_state.items() if m == market)
        steam_on = any(
            at - last < timedelta(minutes=cfg.steam_window_minutes)
            for (m, _), last in self.steam_last.items()
            if m == market
        )
        main = self.main_steps(market, at)
        wmax = timedelta(minutes=max(cfg.velocity_windows_minutes))
        velocity = consistency = None
        if main:
            if any(len(s) > 1 for s in main.values()):
                velocity = _median_net(main, at, wmax)[1] / max(cfg.velocity_windows_minutes)
            if len(main) >= 2:
                nets = [_net(s, at, wmax)[1] for s in main.values()]
                m = _med(nets)
                agree = [n for n in nets if (n > 0) == (m > 0) and (n < 0) == (m < 0)]
                consistency = len(agree) / len(nets)
        canon = [
            q
            for (m, side, _b), s in self.quote_steps.items()
            if m == market and side == _CANON[market] and (q := _value_at(s, at)) is not None
        ]
        novig = [q[2] for q in canon if q[2] is not None]
        return {
            "sharp_action_score": max(gaps) if gaps else 0.0,
            "rlm_indicator": rlm_on,
            "steam_detected": steam_on,
            "line_velocity": velocity,
            "movement_consistency": consistency,
            "cross_book_consensus": _med(novig) if novig else None,
            "dec": _med([q[3] for q in canon]) if canon else None,
            "line": _med([q[1] for q in canon if q[1] is not None])
            if any(q[1] is not None for q in canon)
            else None,
        }

    def vector(self, market: str, f: dict[str, Any], outcome: Any, pnl: Any) -> Output:
        return (
            "curated.feature_vectors",
            {
                "game_id": self.gid,
                "market": market,
                "feature_set_version": "v1",
                "event_time": self.commence,
                "home_team": self.home_team,
                "away_team": self.away_team,
                "sharp_action_score": f["sharp_action_score"],
                "rlm_indicator": f["rlm_indicator"],
                "steam_detected": f["steam_detected"],
                "line_velocity": f["line_velocity"],
                "movement_consistency": f["movement_consistency"],
                "cross_book_consensus": f["cross_book_consensus"],
                "team_sharp_action_history": None,
                "actual_outcome": outcome,
                "profit_loss": pnl,
            },
        )

    def close(self, at: datetime) -> dict[str, dict[str, Any]]:
        ms = sorted(
            {m for (m, _s, _b), s in self.quote_steps.items() if s[0][0] <= at}
            | {m for (m, _s, _b, _d), s in self.split_steps.items() if s[0][0] <= at}
        )
        frozen = {m: self.features_at(m, at) for m in ms}
        for m in ms:
            self.out.append(self.vector(m, frozen[m], None, None))
        return frozen

    # -- the run, instant by instant -------------------------------------------------------------

    def run(self) -> list[Output]:
        for t in self.instants:
            if self.vectors_at is None and self.commence is not None and t > self.commence:
                self.vectors_at = self.close(self.commence)
            self.velocity(t)
            self.steam(t)
            self.consensus(t)
            updated = self.sharp_action(t)
            self.reverse_line_movement(t, updated)
            self.final(t)
        return self.out

    def velocity(self, t: datetime) -> None:
        gid, windows = self.gid, sorted(set(self.cfg.velocity_windows_minutes))
        for market in MARKETS:
            per_unit = {u: self.series.get((market, u), {}) for u in ("points", "cents")}
            moved_books: dict[str, str] = {}
            for book in sorted(set(per_unit["points"]) | set(per_unit["cents"])):
                if market != "moneyline" and self.changed_at(market, "points", book, t):
                    moved_books[book] = "points"
                elif self.changed_at(market, "cents", book, t):
                    moved_books[book] = "cents"
            for book, unit in moved_books.items():
                s = per_unit[unit][book]
                value = _value_at(s, t)
                for w in windows:
                    before, change = _net(s, t, timedelta(minutes=w))
                    self.out.append(_vel(gid, market, book, w, t, unit, value, before, change))
            if moved_books:
                unit = "points" if "points" in moved_books.values() else "cents"
                steps = {b: [(w, v) for w, v in s if w <= t] for b, s in per_unit[unit].items()}
                steps = {b: s for b, s in steps.items() if s}
                value = _median_step(steps, t)
                for w in windows:
                    before, change = _median_net(steps, t, timedelta(minutes=w))
                    self.out.append(_vel(gid, market, "median", w, t, unit, value, before, change))

    def steam(self, t: datetime) -> None:
        """Steam, on the market's main unit."""
        cfg = self.cfg
        for market in MARKETS:
            unit = _MAIN_UNIT[market]
            books = self.series.get((market, unit), {})
            if not any(self.changed_at(market, unit, b, t) for b in books):
                continue
            win = timedelta(minutes=cfg.steam_window_minutes)
            thr = cfg.steam_threshold_cents if unit == "cents" else cfg.steam_threshold_points
            by_dir: dict[str, list[tuple[str, float]]] = defaultdict(list)
            for book, s in books.items():
                if s[0][0] > t:
                    continue
                _, net = _net(s, t, win)
                if abs(net) >= thr:
                    by_dir[_money_side(market, net)].append((book, net))  # type: ignore[index]
            for d in sorted(by_dir):
                movers = by_dir[d]
                if len(movers) < cfg.steam_min_books:
                    continue
                previous = self.steam_last.get((market, d))
                self.steam_last[(market, d)] = t
                if previous is not None and t - previous < win:
                    continue
                self.out.append(self.steam_move(market, d, unit, books, movers, t))

    def steam_move(
        self,
        market: str,
        d: str,
        unit: str,
        books: dict[str, Step],
        movers: list[tuple[str, float]],
        t: datetime,
    ) -> Output:
        cfg = self.cfg
        win = timedelta(minutes=cfg.steam_window_minutes)
        thr = cfg.steam_threshold_cents if unit == "cents" else cfg.steam_threshold_points
        firsts = []
        for book, net in movers:
            s = books[book]
            ref = _value_at(s, t - win)
            if ref is None:
                ref = next(v for when, v in s if when > t - win)
            for when, v in s:
                if t - win < when <= t and abs(v - ref) >= thr and (v - ref) * net > 0:
                    firsts.append((when, book))
                    break
        firsts.sort()
        horizon = t - timedelta(minutes=cfg.consensus_quote_horizon_minutes)
        quoting = 0
        for times in self.last_quote[market].values():
            seen = [w for w in times if w <= t]
            if seen and max(seen) >= horizon:
                quoting += 1
        return (
            "curated.steam_moves",
            {
                "move_id": f"{self.gid}|{market}|{d}|{t.isoformat()}",
                "game_id": self.gid,
                "market": market,
                "direction": d,
                "detected_at": t,
                "window_minutes": cfg.steam_window_minutes,
                "books": [b for _, b in firsts],
                "first_mover": firsts[0][1],
                "first_move_at": firsts[0][0],
                "magnitude": _med([abs(n) for _, n in movers]),
                "unit": unit,
                "confidence": len(movers) / quoting,
                "books_quoting": quoting,
            },
        )

    def consensus(self, t: datetime) -> None:
        quote_steps = self.quote_steps
        for market in MARKETS:
            for side in sorted({k[1] for k in quote_steps if k[0] == market}):
                keys = [k for k in quote_steps if k[0] == market and k[1] == side]
                changed = False
                for k in keys:
                    s = quote_steps[k]
                    now = _value_at(s, t)
                    prior = [q for when, q in s if when < t]
                    if any(when == t for when, _ in s) and (not prior or prior[-1][:3] != now[:3]):
                        changed = True
                if not changed:
                    continue
                asof = {k[2]: q for k in keys if (q := _value_at(quote_steps[k], t)) is not None}
                novig = [q[2] for q in asof.values() if q[2] is not None]
                if not novig:
                    continue
                best = max(sorted(asof), key=lambda b: asof[b][3])
                lines_ = [q[1] for q in asof.values() if q[1] is not None]
                self.out.append(
                    (
                        "curated.consensus",
                        {
                            "game_id": self.gid,
                            "market": market,
                            "side": side,
                            "event_time": t,
                            "median_novig_prob": _med(novig),
                            "spread_novig_prob": max(novig) - min(novig),
                            "best_price_american": asof[best][0],
                            "best_book": best,
                            "book_count": len(asof),
                            "median_line": _med(lines_) if lines_ else None,
                        },
                    )
                )

    def line_move(self, market: str, t: datetime) -> float | None:
        steps = self.main_steps(market, t)
        if not steps:
            return None
        return _median_net(steps, t, timedelta(minutes=self.cfg.rlm_lookback_minutes))[1]

    def signal(
        self,
        market: str,
        kind: str,
        side: str,
        tier: str,
        src: str,
        book: str,
        share: tuple[Any, Any, Any],
        mv: Any,
        t: datetime,
    ) -> Output:
        tk, mo, bets = share
        return (
            "curated.sharp_signals",
            {
                "signal_id": "|".join(
                    (self.gid, market, kind, side, tier, src, book, t.isoformat())
                ),
                "game_id": self.gid,
                "market": market,
                "signal_type": kind,
                "side": side,
                "tier": tier,
                "event_time": t,
                "tickets_pct": tk,
                "money_pct": mo,
                "bets": bets,
                "line_move": mv,
                "unit": None if mv is None else _MAIN_UNIT[market],
                "split_source": src,
                "book": book or None,
            },
        )

    def sharp_action(self, t: datetime) -> set[str]:
        """Sharp action: every split update at t; the markets updated."""
        cfg = self.cfg
        updated_markets = set()
        for (market, src, book, side), s in sorted(self.split_steps.items()):
            rec = next((r for when, r in s if when == t), None)
            if rec is None:
                continue
            updated_markets.add(market)
            tickets, money, bets, total = rec
            count = total if total is not None else bets
            if money is None or count is None or count < cfg.sharp_moderate_min_bets:
                continue
            gap = money - tickets
            if gap >= cfg.sharp_premium and count >= cfg.sharp_premium_min_bets:
                tier = "premium"
            elif gap >= cfg.sharp_strong:
                tier = "strong"
            elif gap >= cfg.sharp_moderate:
                tier = "moderate"
            else:
                continue
            share = (tickets, money, bets)
            move = self.line_move(market, t)
            self.out.append(
                self.signal(market, "sharp_action", side, tier, src, book, share, move, t)
            )
        return updated_markets

    def share(self, market: str, src: str, book: str, side: str, t: datetime) -> tuple[Any, ...]:
        """(tickets, money, bets) of a side as of t; the other side's complement if only it is
        known."""
        own_s = self.split_steps.get((market, src, book, side))
        own = _value_at(own_s, t) if own_s else None
        if own is not None:
            return own[0], own[1], own[2]
        opp_s = self.split_steps.get((market, src, book, _OPP[side]))
        opp = _value_at(opp_s, t) if opp_s else None
        if opp is None:
            return None, None, None
        return 100.0 - opp[0], None if opp[1] is None else 100.0 - opp[1], None

    def reverse_line_movement(self, t: datetime, updated_markets: set[str]) -> None:
        cfg = self.cfg
        for market in MARKETS:
            unit = _MAIN_UNIT[market]
            line_changed = any(
                self.changed_at(market, unit, b, t) for b in self.series.get((market, unit), {})
            )
            if not (line_changed or market in updated_markets):
                continue
            move = self.line_move(market, t)
            streams = sorted({(k[1], k[2]) for k in self.split_steps if k[0] == market})
            for src, book in streams:
                cond = None
                least = cfg.rlm_min_move_cents if unit == "cents" else cfg.rlm_min_move_points
                if move and abs(move) >= least:
                    fav = _money_side(market, move)
                    assert fav is not None
                    minority_other = self.share(market, src, book, _OPP[fav], t)[0]
                    if minority_other is not None:
                        hit = [x for x in sorted(cfg.rlm_tiers) if minority_other > x]
                        if hit:
                            cond = (fav, f"{hit[-1]:g}")
                key = (market, f"{src}|{book}")
                was = self.rlm_state.get(key)
                self.rlm_state[key] = cond
                if cond is None:
                    continue
                # the same (side, tier) again within a lookback of when it last held: same RLM
                held = self.rlm_held.get(key)
                self.rlm_held[key] = (cond, t)
                lookback = timedelta(minutes=cfg.rlm_lookback_minutes)
                if held is not None and held[0] == cond and (was == cond or t - held[1] < lookback):
                    continue
                share = self.share(market, src, book, cond[0], t)
                self.out.append(
                    self.signal(
                        market,
                        "reverse_line_movement",
                        cond[0],
                        cond[1],
                        src,
                        book,
                        share,
                        move,
                        t,
                    )
                )

    def final(self, t: datetime) -> None:
        """A final game fills the targets."""
        for g in sorted(
            self.games,
            key=lambda g: (g.get("ingested_at") or _gtime(g), g.get("source_event_id") or ""),
        ):
            if _gtime(g) != t or self.finished:
                continue
            if str(g.get("status") or "").lower() in {"final", "closed", "complete", "completed"}:
                if self.vectors_at is None:
                    self.vectors_at = self.close(self.commence)
                self.finished = True
                for market in sorted(self.vectors_at):
                    f = self.vectors_at[market]
                    outcome = _settle(market, g.get("home_score"), g.get("away_score"), f["line"])
                    pnl = None
                    if outcome is not None and f["dec"] is not None:
                        pnl = (
                            f["dec"] - 1.0
                            if outcome == "win"
                            else -1.0
                            if outcome == "loss"
                            else 0.0
                        )
                    self.out.append(self.vector(market, f, outcome, pnl))


def _gtime(g: dict[str, Any]) -> datetime:
    return g.get("event_time") or g.get("ingested_at") or g["commence_time"]


def _vel(
    gid: str,
    market: str,
    book: str,
    w: int,
    t: datetime,
    unit: str,
    value: Any,
    before: Any,
    change: float,
) -> Output:
    return (
        "curated.line_velocity",
        {
            "game_id": gid,
            "market": market,
            "side": _CANON[market],
            "book": book,
            "window_minutes": w,
            "event_time": t,
            "unit": unit,
            "value": value,
            "value_before": before,
            "change": change,
            "velocity": change / w,
        },
    )
