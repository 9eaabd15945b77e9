"""Unit tests read config.toml's defaults, whatever the shell exports (ports, URLs, modes)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_oddsflow_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ODDSFLOW_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
