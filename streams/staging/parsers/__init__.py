"""Source parsers of the staging zone: ``parse(envelope) -> Parsed``.

Dispatch is on ``envelope["source"]``; for source ``file`` on ``request["format"]`` (pinnacle,
sbro, jsonl). The simulator emits The Odds API's shape and shares its parser. Parsing is pure:
no clock, no settings, no I/O. ``parse_and_validate`` adds the per-line checks and the no-vig
probabilities of streams.staging.validate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from streams.staging.parsers.action_network import parse_action_network
from streams.staging.parsers.archive import parse_archive
from streams.staging.parsers.base import (
    UNKNOWN_FORMAT,
    UNKNOWN_SOURCE,
    Context,
    Parsed,
    ParseError,
    Reject,
    context_of,
    load_json,
)
from streams.staging.parsers.odds_api import parse_odds_api
from streams.staging.parsers.pinnacle import parse_pinnacle
from streams.staging.parsers.sbd import parse_sbd
from streams.staging.parsers.sbro import parse_sbro

__all__ = [
    "JSON_SOURCES",
    "ParseError",
    "Parsed",
    "Reject",
    "parse",
    "parse_and_validate",
]

JSON_SOURCES: dict[str, Callable[[Any, Context], Parsed]] = {
    "odds_api": parse_odds_api,
    "simulator": parse_odds_api,
    "sbd": parse_sbd,
    "action_network": parse_action_network,
}
FILE_FORMATS: dict[str, Callable[[Any, Context], Parsed]] = {
    "pinnacle": parse_pinnacle,
    "sbro": parse_sbro,
}


def _dispatch(envelope: Mapping[str, Any], outer: Context | None) -> Parsed:
    ctx = context_of(envelope)
    if outer is not None:  # archived record: outer lineage, inner ingestion time
        ctx = ctx._replace(event_id=outer.event_id, source=outer.source)
    source = envelope["source"]
    json_parser = JSON_SOURCES.get(source)
    if json_parser is not None:
        return json_parser(load_json(envelope), ctx)
    if source == "file":
        fmt = ctx.request.get("format")
        if fmt == "jsonl":
            return parse_archive(envelope, ctx, _dispatch)
        file_parser = FILE_FORMATS.get(fmt or "")
        if file_parser is None:
            raise ParseError(UNKNOWN_FORMAT, f"file record with format {fmt!r}")
        return file_parser(envelope, ctx)
    raise ParseError(UNKNOWN_SOURCE, f"no parser for source {source!r}")


def parse(envelope: Mapping[str, Any]) -> Parsed:
    """Parse one decoded raw envelope into staging records and rejects.

    Raises ParseError(error_class, reason) when nothing of the payload can be used.
    """
    return _dispatch(envelope, None)


def parse_and_validate(
    envelope: Mapping[str, Any],
    *,
    now: datetime | None = None,
    future_tolerance: timedelta = timedelta(minutes=5),
) -> Parsed:
    """parse() then validate_parsed(): what the staging agent promotes, and what it refuses."""
    from streams.staging.validate import validate_parsed

    return validate_parsed(parse(envelope), now=now, future_tolerance=future_tolerance)
