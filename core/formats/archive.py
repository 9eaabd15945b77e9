"""Archived raw envelopes (JSON lines) replayed through the file collector.

Each payload is one JSON object with the raw envelope's fields: ``event_id``, ``source``,
``fetched_at`` (ISO string or epoch microseconds), ``content_type``, ``request`` and the
payload as ``payload`` (text), ``payload_b64`` / ``payload_base64`` (bytes, base64) or a JSON
value (re-serialized). It is re-dispatched on its inner source. Records keep the outer
envelope's event id and source (lineage and per-source accounting point at the record actually
consumed) and the inner fetched_at as ingestion time (when the data was really fetched).
Archives of archives are refused (wrong_shape) to bound the recursion.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any

from core.formats.base import (
    BAD_ENCODING,
    MISSING_FIELD,
    WRONG_SHAPE,
    Context,
    Parsed,
    ParseError,
    load_json,
)


def inner_envelope(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """The archived envelope of an outer ``file``/``jsonl`` envelope, ready to dispatch."""
    doc = load_json(envelope)
    if not isinstance(doc, Mapping):
        raise ParseError(WRONG_SHAPE, f"archived envelope is a {type(doc).__name__}")
    inner: dict[str, Any] = dict(doc)
    if "payload" not in inner:
        b64 = inner.pop("payload_b64", None) or inner.pop("payload_base64", None)
        if b64 is None:
            raise ParseError(MISSING_FIELD, "archived envelope has no payload")
        try:
            inner["payload"] = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise ParseError(BAD_ENCODING, "archived payload is not valid base64") from None
    elif not isinstance(inner["payload"], str | bytes):
        inner["payload"] = json.dumps(inner["payload"]).encode()
    req = inner.get("request")
    if req is None:
        inner["request"] = {}
    elif isinstance(req, Mapping):
        inner["request"] = {str(k): str(v) for k, v in req.items()}
    else:
        raise ParseError(WRONG_SHAPE, "archived envelope request is not an object")
    return inner


def parse_archive(
    envelope: Mapping[str, Any],
    ctx: Context,
    dispatch: Callable[[Mapping[str, Any], Context | None], Parsed],
) -> Parsed:
    """Parse an archived envelope by re-dispatching it under the outer lineage."""
    inner = inner_envelope(envelope)
    if inner.get("source") == "file" and inner["request"].get("format") == "jsonl":
        raise ParseError(WRONG_SHAPE, "an archive inside an archive is not supported")
    return dispatch(inner, ctx)
