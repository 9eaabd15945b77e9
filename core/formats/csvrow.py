"""Reading one CSV row against a header line, fast (the file sources send one row per record)."""

from __future__ import annotations

import csv
from functools import lru_cache

from core.formats.base import BAD_CSV, MISSING_FIELD, ParseError


def split_row(text: str) -> list[str]:
    """Cells of one CSV line; the csv module only when quoting is present (rare, slower)."""
    text = text.rstrip("\r\n")
    if '"' not in text:
        return text.split(",")
    try:
        rows = list(csv.reader([text]))
    except csv.Error as exc:
        raise ParseError(BAD_CSV, f"bad CSV row: {exc}") from None
    if len(rows) != 1:
        raise ParseError(BAD_CSV, f"expected one CSV row, got {len(rows)}")
    return rows[0]


@lru_cache(maxsize=64)
def header_index(header: str, required: tuple[str, ...]) -> dict[str, int]:
    """Column positions of a header line, checked once per distinct header."""
    cols = [c.strip().lstrip("\ufeff") for c in split_row(header)]
    index = {c: i for i, c in enumerate(cols)}
    missing = [c for c in required if c not in index]
    if missing:
        raise ParseError(MISSING_FIELD, f"header lacks columns {missing}")
    return index


def row_dict(text: str, header: str, required: tuple[str, ...]) -> dict[str, str]:
    """One row as {column: cell}; raises ParseError when the cell count differs."""
    index = header_index(header, required)
    cells = split_row(text)
    if len(cells) != len(index):
        raise ParseError(BAD_CSV, f"row has {len(cells)} cells, header has {len(index)}")
    return {c: cells[i].strip() for c, i in index.items()}
