"""De-duplication: a staged record goes on only when its values changed for its identity.

Sources re-send unchanged prices every poll, and Kafka may redeliver a record after a retry or a
restart. The state per identity is (event time, values): a record is new when its values differ
from the last ones seen AND it is not older than them; an older record (a redelivery, a replay, an
out-of-order snapshot) is never re-emitted, so A → B → A-redelivered stays A → B.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# identity fields → value fields, per staging schema
IDENTITY: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "oddsflow.staging.OddsLine": (
        ("game_id", "book", "market", "side"),
        ("price_american", "line"),
    ),
    "oddsflow.staging.BettingSplit": (
        ("game_id", "source", "book", "market", "side"),
        ("bets_pct", "money_pct", "bets", "total_bets"),
    ),
    "oddsflow.staging.Game": (
        ("game_id",),
        ("status", "home_score", "away_score", "commence_time", "home_pitcher", "away_pitcher"),
    ),
}


def _micros(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def _plain(v: Any) -> Any:
    return _micros(v) if isinstance(v, datetime) else v


@dataclass(frozen=True, slots=True)
class Verdict:
    emit: bool
    reason: str  # "changed", "first", "unchanged", "stale"


class Deduplicator:
    """Decides per record whether it is a change. ``store`` may be a dict or a faust table."""

    def __init__(self, store: MutableMapping[str, Any]) -> None:
        self.store = store

    @staticmethod
    def identity(schema: str, record: dict[str, Any]) -> str:
        ident, _ = IDENTITY[schema]
        return schema.rsplit(".", 1)[-1] + "|" + "|".join(str(record[f]) for f in ident)

    def check(self, schema: str, record: dict[str, Any]) -> Verdict:
        _, value_fields = IDENTITY[schema]
        key = self.identity(schema, record)
        at = _micros(record["event_time"])
        values = [_plain(record[f]) for f in value_fields]
        seen = self.store.get(key)
        if seen is not None:
            seen_at, seen_values = seen[0], seen[1]
            if at < seen_at:
                return Verdict(False, "stale")
            if list(seen_values) == values:
                return Verdict(False, "unchanged")
        self.store[key] = [at, values]
        return Verdict(True, "first" if seen is None else "changed")
