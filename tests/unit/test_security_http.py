"""HTTP endpoints bind to the loopback address unless told otherwise; faust's web is off."""

from __future__ import annotations

import argparse

import pytest


@pytest.mark.parametrize(
    ("module", "adder"),
    [
        ("oddsflow.ops.metrics", "add_metrics_arguments"),
        ("oddsflow.web.app", "add_web_arguments"),
    ],
)
def test_http_servers_default_to_loopback(module: str, adder: str) -> None:
    mod = pytest.importorskip(module)
    parser = argparse.ArgumentParser()
    getattr(mod, adder)(parser)
    assert parser.parse_args([]).host == "127.0.0.1"
