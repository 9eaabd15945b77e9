"""Odds arithmetic and price parsing, table-driven."""

from __future__ import annotations

import math

import pytest

from core.domain.odds import (
    PRICE_BOUND,
    PriceError,
    american_to_decimal,
    cents_move,
    decimal_to_american,
    from_cents,
    implied_prob,
    novig_two_way,
    on_half_point_grid,
    overround,
    parse_american,
    parse_points,
    to_cents,
)


@pytest.mark.parametrize(
    ("a", "decimal"),
    [(100, 2.0), (-100, 2.0), (150, 2.5), (-150, 1 + 100 / 150), (-110, 1 + 100 / 110),
     (102, 2.02), (1000, 11.0), (-1000, 1.1), (100000, 1001.0)],
)  # fmt: skip
def test_american_to_decimal(a: int, decimal: float) -> None:
    assert american_to_decimal(a) == pytest.approx(decimal)
    assert implied_prob(a) == pytest.approx(1 / decimal)


@pytest.mark.parametrize(
    ("decimal", "a"), [(2.0, 100), (2.5, 150), (1.5, -200), (1.909, -110), (11.0, 1000)]
)
def test_decimal_to_american(decimal: float, a: int) -> None:
    assert decimal_to_american(decimal) == a


@pytest.mark.parametrize("bad", [1.0, 0.5, math.nan, math.inf])
def test_decimal_to_american_refuses(bad: float) -> None:
    with pytest.raises(ValueError):
        decimal_to_american(bad)


@pytest.mark.parametrize("bad", [99, -99, 0, 50])
def test_american_to_decimal_refuses_small(bad: int) -> None:
    with pytest.raises(ValueError):
        american_to_decimal(bad)


def test_novig_two_way_normalizes() -> None:
    p_away, p_home = novig_two_way(-110, 102)
    assert p_away + p_home == pytest.approx(1.0)
    assert p_away == pytest.approx((1 / 1.90909) / (1 / 1.90909 + 1 / 2.02), rel=1e-5)
    assert novig_two_way(-110, -110) == pytest.approx((0.5, 0.5))
    assert overround(-110, -110) == pytest.approx(2 * 110 / 210)


@pytest.mark.parametrize(
    ("a", "c"), [(100, 0), (-100, 0), (105, 5), (-105, -5), (150, 50), (-150, -50)]
)
def test_cents_scale(a: int, c: int) -> None:
    assert to_cents(a) == c
    assert from_cents(c) in (a, 100 if a == -100 else a)


@pytest.mark.parametrize(
    ("a_from", "a_to", "move"),
    [(-105, 105, 10), (105, -105, -10), (-110, -120, -10), (120, 130, 10), (-100, 100, 0)],
)
def test_cents_move(a_from: int, a_to: int, move: int) -> None:
    assert cents_move(a_from, a_to) == move


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (-110, -110), (120, 120), (-110.0, -110), (102.0, 102), ("+120", 120), ("-110", -110),
        (" 150 ", 150), ("-110.0", -110), ("EVEN", 100), ("even", 100), ("EV", 100),
        (100, 100), (-100, -100), (PRICE_BOUND, PRICE_BOUND), (-PRICE_BOUND, -PRICE_BOUND),
    ],
)  # fmt: skip
def test_parse_american_accepts(raw: object, expected: int) -> None:
    assert parse_american(raw) == expected


@pytest.mark.parametrize(
    ("raw", "error_class"),
    [
        ("", "missing_price"), ("   ", "missing_price"), (None, "missing_price"),
        (99, "price_out_of_range"), (-99, "price_out_of_range"), (0, "price_out_of_range"),
        ("50", "price_out_of_range"), (9.5, "price_out_of_range"), ("8.0", "price_out_of_range"),
        (PRICE_BOUND + 1, "price_out_of_range"), (-PRICE_BOUND - 1, "price_out_of_range"),
        (math.nan, "non_finite_price"), (math.inf, "non_finite_price"),
        ("nan", "non_finite_price"), ("-inf", "non_finite_price"),
        ("-219.5", "invalid_price"), (-219.5, "invalid_price"), ("abc", "invalid_price"),
        ("+-110", "invalid_price"), (True, "invalid_price"), ([110], "invalid_price"),
        ({"american": -110}, "invalid_price"),
    ],
)  # fmt: skip
def test_parse_american_refuses(raw: object, error_class: str) -> None:
    res = parse_american(raw)
    assert isinstance(res, PriceError)
    assert res.error_class == error_class
    assert res.reason


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("+1.5", 1.5), ("-1.5", -1.5), (8, 8.0), ("7", 7.0), (8.5, 8.5), ("PK", 0.0)],
)
def test_parse_points(raw: object, expected: float) -> None:
    assert parse_points(raw) == expected


@pytest.mark.parametrize(
    ("raw", "error_class"),
    [("", "missing_line"), (None, "missing_line"), ("x", "invalid_line"),
     (math.nan, "non_finite_line"), ("inf", "non_finite_line"), ([1], "invalid_line")],
)  # fmt: skip
def test_parse_points_refuses(raw: object, error_class: str) -> None:
    res = parse_points(raw)
    assert isinstance(res, PriceError)
    assert res.error_class == error_class


@pytest.mark.parametrize(
    ("x", "ok"), [(8.5, True), (8.0, True), (-1.5, True), (0.0, True), (8.25, False),
                  (7.75, False), (math.nan, False), (math.inf, False)],
)  # fmt: skip
def test_half_point_grid(x: float, ok: bool) -> None:
    assert on_half_point_grid(x) is ok
