"""What the pages read from Postgres: the zones' tables, read-only.

Every chart plots one side per market as a no-vig probability in percent: home for moneyline
and run line, over for totals. Probability is the one scale on which every book's price and the
cross-book consensus (a median no-vig probability) line up, and it has no jump where American
prices cross from -105 to +105.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from core.settings import Settings

MARKETS = ("moneyline", "spread", "total")
CHART_SIDE = {"moneyline": "home", "spread": "home", "total": "over"}


def _iso(v: datetime | None) -> str | None:
    return v.astimezone(UTC).isoformat() if v is not None else None


def today_window(day: str | None) -> tuple[datetime, datetime]:
    """A slate: the given UTC day, or by default games starting from 6 h ago to 30 h ahead
    (evening games of an American day start after midnight UTC)."""
    if day:
        start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        return start, start + timedelta(days=1)
    now = datetime.now(UTC)
    return now - timedelta(hours=6), now + timedelta(hours=30)


async def games(
    conn: asyncpg.Connection, settings: Settings, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Games of the slate with their latest consensus per market and steam/sharp flags."""
    z = settings.pipeline.zones
    rows = await conn.fetch(
        f"""
        WITH g AS (
            SELECT DISTINCT ON (game_id) game_id, home_team, away_team, commence_time, status
            FROM (
                SELECT game_id, home_team, away_team, commence_time, status, 0 AS pref
                FROM {z.staging}.games WHERE commence_time >= $1 AND commence_time < $2
                UNION ALL
                SELECT DISTINCT game_id, home_team, away_team, commence_time, 'scheduled', 1
                FROM {z.staging}.odds_lines WHERE commence_time >= $1 AND commence_time < $2
            ) u ORDER BY game_id, pref
        ),
        c AS (
            SELECT DISTINCT ON (game_id, market, side) game_id, market, side, event_time,
                   median_novig_prob, median_line, best_price_american, best_book, book_count
            FROM {z.curated}.consensus WHERE game_id IN (SELECT game_id FROM g)
            ORDER BY game_id, market, side, event_time DESC
        )
        SELECT g.*,
          (SELECT json_agg(json_build_object('market', market, 'side', side,
                  'prob', median_novig_prob, 'line', median_line, 'best', best_price_american,
                  'best_book', best_book, 'books', book_count, 'at', event_time))
             FROM c WHERE c.game_id = g.game_id) AS consensus,
          (SELECT count(*) FROM {z.curated}.steam_moves s WHERE s.game_id = g.game_id) AS steam,
          (SELECT count(*) FROM {z.curated}.sharp_signals s
            WHERE s.game_id = g.game_id AND s.signal_type = 'sharp_action') AS sharp,
          (SELECT count(*) FROM {z.curated}.sharp_signals s
            WHERE s.game_id = g.game_id AND s.signal_type = 'reverse_line_movement') AS rlm
        FROM g ORDER BY commence_time, game_id
        """,
        start,
        end,
    )
    out = []
    for r in rows:
        cons = json.loads(r["consensus"]) if r["consensus"] else []
        out.append(
            {
                "game_id": r["game_id"],
                "home_team": r["home_team"],
                "away_team": r["away_team"],
                "commence_time": _iso(r["commence_time"]),
                "status": r["status"],
                "consensus": {f"{c['market']}:{c['side']}": c for c in cons},
                "steam": r["steam"],
                "sharp": r["sharp"],
                "rlm": r["rlm"],
            }
        )
    return out


async def game(conn: asyncpg.Connection, settings: Settings, game_id: str) -> dict[str, Any] | None:
    """One game's chart data: every book's line, the consensus, steam moves and sharp signals."""
    z = settings.pipeline.zones
    head = await conn.fetchrow(
        f"SELECT game_id, home_team, away_team, commence_time FROM {z.staging}.games"
        " WHERE game_id = $1",
        game_id,
    ) or await conn.fetchrow(
        f"SELECT game_id, home_team, away_team, commence_time FROM {z.staging}.odds_lines"
        " WHERE game_id = $1 LIMIT 1",
        game_id,
    )
    if head is None:
        return None
    lines = await conn.fetch(
        f"SELECT book, market, side, line, price_american, implied_prob, novig_prob, event_time"
        f" FROM {z.staging}.odds_lines WHERE game_id = $1 ORDER BY event_time",
        game_id,
    )
    consensus = await conn.fetch(
        f"SELECT market, side, event_time, median_novig_prob, median_line, best_price_american,"
        f" best_book, book_count FROM {z.curated}.consensus WHERE game_id = $1"
        " ORDER BY event_time",
        game_id,
    )
    steam = await conn.fetch(
        f"SELECT move_id, market, direction, detected_at, books, first_mover, magnitude, unit,"
        f" confidence FROM {z.curated}.steam_moves WHERE game_id = $1 ORDER BY detected_at",
        game_id,
    )
    sharp = await conn.fetch(
        f"SELECT signal_id, market, signal_type, side, tier, event_time, tickets_pct, money_pct,"
        f" line_move, book FROM {z.curated}.sharp_signals WHERE game_id = $1"
        " ORDER BY event_time",
        game_id,
    )

    def plain(r: asyncpg.Record) -> dict[str, Any]:
        return {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in dict(r).items()}

    return {
        "game_id": head["game_id"],
        "home_team": head["home_team"],
        "away_team": head["away_team"],
        "commence_time": _iso(head["commence_time"]),
        "lines": [plain(r) for r in lines],
        "consensus": [plain(r) for r in consensus],
        "steam": [plain(r) for r in steam],
        "sharp": [plain(r) for r in sharp],
    }


async def dead_letters(conn: asyncpg.Connection, settings: Settings) -> list[dict[str, Any]]:
    """Dead letters grouped by stage, source and error class — the groups ``oddsflow dlq list``
    shows — most frequent first, each with its newest reason as the example. Grouping by the
    reason text made one group per record (reasons name the event and the value)."""
    ops = settings.pipeline.zones.operational
    rows = await conn.fetch(
        f"""
        WITH d AS (
            SELECT stage, error_class, reason, failed_at,
                   CASE WHEN left(origin_topic, length($1)) = $1
                        THEN substr(origin_topic, length($1) + 1) ELSE origin_topic END AS logical
            FROM {ops}.dead_letters
        )
        SELECT stage,
               CASE WHEN logical LIKE 'raw.odds.%' THEN substr(logical, 10) ELSE logical END
                   AS source,
               error_class, count(*) AS n, max(failed_at) AS last,
               (array_agg(reason ORDER BY failed_at DESC))[1] AS example
        FROM d GROUP BY 1, 2, 3 ORDER BY n DESC, stage, source, error_class LIMIT 50
        """,
        settings.kafka.topic_prefix,
    )
    return [
        {
            "stage": r["stage"],
            "source": r["source"],
            "error_class": r["error_class"],
            "count": r["n"],
            "last": _iso(r["last"]),
            "example": r["example"],
        }
        for r in rows
    ]


async def quality(conn: asyncpg.Connection, settings: Settings) -> list[dict[str, Any]]:
    """Quality pass rate per source and stage: over every window kept, and the latest one."""
    ops = settings.pipeline.zones.operational
    rows = await conn.fetch(
        f"""
        SELECT source, stage, sum(records_in)::bigint AS records_in,
               sum(promoted + deduplicated)::float8 / nullif(sum(records_in), 0) AS pass_rate,
               (array_agg(pass_rate ORDER BY window_start DESC))[1] AS latest_pass_rate,
               max(window_start) AS latest_window
        FROM {ops}.quality GROUP BY source, stage ORDER BY source, stage
        """
    )
    return [
        {
            "source": r["source"],
            "stage": r["stage"],
            "records_in": r["records_in"],
            "pass_rate": r["pass_rate"],
            "latest_pass_rate": r["latest_pass_rate"],
            "latest_window": _iso(r["latest_window"]),
        }
        for r in rows
    ]
