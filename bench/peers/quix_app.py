"""The staging work as a Quix Streams application, written the way its users write one.

Raw topic records are Avro single-object ``RawEnvelope``s whose payload is one Odds API v4 JSON
event (the simulator's shape). Per raw record the app decodes the envelope (a custom
deserializer: Quix's ``AvroDeserializer`` reads a bare Avro body, ours carry the 10-byte
single-object header), parses the JSON payload, emits one line per book × market × side with
canonical teams, book and game id, decimal odds and the no-vig probability of its side, re-keys
by game (``group_by``, Quix's repartition topic), keeps only lines whose (price, line) changed
for their identity (per-game ``State``) and writes JSON to the output topic.

The normalization uses oddsflow's pure domain helpers (``core/domain``) where a Quix user
would write their own equivalent, so the per-line work is the same lookups and arithmetic.
What the peer does not do, and oddsflow's staging does: dead letters with reasons, the quality
gate, Avro encoding of typed staging records, lineage headers, stale-snapshot ordering.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form
from quixstreams import Application, State
from quixstreams.models import SerializationContext
from quixstreams.models.serializers import SerializationError
from quixstreams.models.serializers.avro import AvroDeserializer
from quixstreams.models.topics import Topic

import schemas
from core.domain.books import canonical_book
from core.domain.games import game_id
from core.domain.odds import american_to_decimal, novig_two_way
from core.domain.teams import lookup_team, resolve_team
from core.domain.timeparse import parse_utc

RAW_SCHEMA: Final = Path(schemas.__file__).parent / "avro" / "raw" / "raw_envelope.avsc"
MARKETS: Final = {"h2h": "moneyline", "spreads": "spread", "totals": "total"}
TOTAL_SIDES: Final = {"over": "over", "under": "under"}


class SingleObjectAvroDeserializer(AvroDeserializer):
    """Quix's Avro deserializer after checking and removing the single-object header
    (marker ``C3 01`` + the schema's CRC-64-AVRO fingerprint)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        super().__init__(schema=schema)
        canonical = to_parsing_canonical_form(parse_schema(schema))
        self._header = b"\xc3\x01" + bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))

    def __call__(self, value: bytes, ctx: SerializationContext) -> Any:
        if value[:10] != self._header:
            raise SerializationError(f"not a {self._header.hex()} single-object record")
        return super().__call__(value[10:], ctx)


def envelope_deserializer() -> SingleObjectAvroDeserializer:
    return SingleObjectAvroDeserializer(json.loads(RAW_SCHEMA.read_text()))


def _side(market: str, name: object, home: str, away: str) -> str | None:
    if market == "total":
        return TOTAL_SIDES.get(name.casefold()) if isinstance(name, str) else None
    code = lookup_team(name)
    return "home" if code == home else "away" if code == away else None


def event_lines(envelope: dict[str, Any]) -> list[dict[str, Any]]:
    """One normalized line per book × market × side of the envelope's Odds API event.

    An event with unknown teams yields nothing; a market that is not a priced two-way pair is
    skipped (the peer drops bad data where oddsflow dead-letters it).
    """
    event = json.loads(envelope["payload"])
    try:
        home = resolve_team(event["home_team"])
        away = resolve_team(event["away_team"])
        commence = parse_utc(event["commence_time"])
        gid = game_id(commence, away, home)
    except (KeyError, ValueError):
        return []
    first_pitch = commence.isoformat()  # JSON has no datetime: ISO 8601 text, UTC
    fetched_at = envelope["fetched_at"].isoformat()
    lines: list[dict[str, Any]] = []
    for bm in event.get("bookmakers") or ():
        try:
            book = canonical_book(bm["key"])
        except (KeyError, ValueError):
            continue
        for mk in bm.get("markets") or ():
            market = MARKETS.get(mk.get("key"))
            outcomes = mk.get("outcomes") or ()
            if market is None or len(outcomes) != 2:
                continue
            try:
                pair = []
                for oc in outcomes:
                    side, price = _side(market, oc["name"], home, away), oc["price"]
                    if side is None or type(price) is not int:
                        raise ValueError(f"unusable outcome {oc!r}")
                    line = None if market == "moneyline" else float(oc["point"])
                    pair.append((side, price, line, american_to_decimal(price)))
                novig = novig_two_way(pair[0][1], pair[1][1])
                event_time = parse_utc(mk.get("last_update") or bm["last_update"]).isoformat()
            except (KeyError, TypeError, ValueError):
                continue
            for (side, price, line, decimal), prob in zip(pair, novig, strict=True):
                lines.append(
                    {
                        "game_id": gid,
                        "commence_time": first_pitch,
                        "home": home,
                        "away": away,
                        "book": book,
                        "market": market,
                        "side": side,
                        "line": line,
                        "price": price,
                        "decimal": decimal,
                        "novig_prob": prob,
                        "event_time": event_time,
                        "source_event_id": envelope["event_id"],
                        "fetched_at": fetched_at,
                    }
                )
    return lines


def changed(line: dict[str, Any], state: State) -> bool:
    """True when the line's (price, line) differs from the last one seen for its identity.

    State is per message key, i.e. per game after ``group_by``; the identity within a game is
    book × market × side.
    """
    identity = f"{line['book']}|{line['market']}|{line['side']}"
    now = [line["price"], line["line"]]
    if state.get(identity) == now:
        return False
    state.set(identity, now)
    return True


def changed_lines(lines: list[dict[str, Any]], state: State) -> list[dict[str, Any]]:
    """The lines of one event (one game) that :func:`changed`."""
    return [line for line in lines if changed(line, state)]


def _game_of(lines: list[dict[str, Any]]) -> str:
    return lines[0]["game_id"]


Transform = Callable[[dict[str, Any]], list[dict[str, Any]]]


def staging_app(
    app: Application,
    input_topic: str,
    output_topic: str,
    *,
    per_line: bool = False,
    transform: Transform = event_lines,
) -> tuple[Topic, Topic]:
    """Decode → lines → group by game → de-dup → JSON out; returns (input, output) topics.

    By default the app re-keys each event's lines together (one raw record is one game, so one
    repartition message per raw record) and expands them in the stateful step, as a user who
    minds the cost of ``group_by`` writes it. ``per_line``: expand first and re-key every line
    (six repartition messages per raw record), the textbook order. ``transform``:
    ``event_lines`` or a wrapper of it (the benchmark counts what it makes).
    """
    envelopes = envelope_deserializer()
    raw = app.topic(input_topic, key_deserializer="bytes", value_deserializer=envelopes)
    out = app.topic(output_topic, key_serializer="str", value_serializer="json")
    sdf = app.dataframe(raw)
    if per_line:
        sdf = sdf.apply(transform, expand=True)
        sdf = sdf.group_by("game_id")
        sdf = sdf.filter(changed, stateful=True)
    else:
        sdf = sdf.apply(transform)
        sdf = sdf.filter(bool)  # an event with no usable line
        sdf = sdf.group_by(_game_of, name="game_id")
        sdf = sdf.apply(changed_lines, stateful=True, expand=True)
    sdf.to_topic(out)
    return raw, out


def passthrough_app(app: Application, input_topic: str, output_topic: str) -> tuple[Topic, Topic]:
    """The ceiling: raw bytes in, the same bytes out, nothing in between."""
    raw = app.topic(input_topic, key_deserializer="bytes", value_deserializer="bytes")
    out = app.topic(output_topic, key_serializer="bytes", value_serializer="bytes")
    app.dataframe(raw).to_topic(out)
    return raw, out
