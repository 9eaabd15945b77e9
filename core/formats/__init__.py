"""The raw sources' formats: ``parse(envelope) -> Parsed``.

Staging parses every raw record with these; the file replayer (producers/history.py) reads the
archive formats with them to key and time each row as staging will. They live in the core
because two stages share them.

Dispatch is on ``envelope["source"]``; for source ``file`` on ``request["format"]`` (pinnacle,
sbro, jsonl). The simulator emits The Odds API's shape and shares its parser. Parsing is pure:
no clock, no settings, no I/O. ``streams.staging.validate.parse_and_validate`` adds the
per-line checks and the no-vig probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from core.formats.action_network import parse_action_network
from core.formats.archive import parse_archive
from core.formats.base import (
    UNKNOWN_FORMAT,
    UNKNOWN_SOURCE,
    Context,
    Parsed,
    ParseError,
    Reject,
    context_of,
    load_json,
)
from core.formats.odds_api import parse_odds_api
from core.formats.pinnacle import parse_pinnacle
from core.formats.sbd import parse_sbd
from core.formats.sbro import parse_sbro

__all__ = [
    "JSON_SOURCES",
    "ParseError",
    "Parsed",
    "Reject",
    "parse",
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
