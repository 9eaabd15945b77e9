"""Team alias table: every code, every alias family, every name in the real captures."""

from __future__ import annotations

import csv
import json

import pytest

from core.domain.teams import (
    ACTION_NETWORK_TEAM_IDS,
    ALIAS_FAMILIES,
    AMBIGUOUS,
    CODES,
    TeamError,
    action_network_team,
    lookup_team,
    resolve_team,
)
from tests.fixtures_path import AN_TEAMS, ODDS_API, PINNACLE, SBD, SBRO

ALL_ALIASES = [
    (family, alias, code)
    for family, table in ALIAS_FAMILIES.items()
    for alias, code in table.items()
]


def test_thirty_codes() -> None:
    assert len(CODES) == 30
    assert len(set(CODES)) == 30


@pytest.mark.parametrize("code", CODES)
def test_every_code_is_its_own_alias(code: str) -> None:
    assert resolve_team(code) == code
    assert resolve_team(code.lower()) == code
    assert resolve_team(f"  {code}  ") == code


@pytest.mark.parametrize(("family", "alias", "code"), ALL_ALIASES)
def test_every_alias(family: str, alias: str, code: str) -> None:
    assert resolve_team(alias) == code, family
    assert resolve_team(alias.upper()) == code
    assert resolve_team("  " + alias.replace(" ", "   ") + " ") == code


@pytest.mark.parametrize("code", CODES)
def test_every_code_has_a_full_name(code: str) -> None:
    assert code in set(ALIAS_FAMILIES["full_names"].values())


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("LOS", "LAD"), ("Los Angeles Dodgers", "LAD"), ("LA Angels", "LAA"), ("ANA", "LAA"),
        ("Los Angeles Angels of Anaheim", "LAA"), ("CUB", "CHC"), ("CHW", "CWS"),
        ("SDG", "SD"), ("SFO", "SF"), ("TAM", "TB"), ("KAN", "KC"), ("KCR", "KC"),
        ("WAS", "WSH"), ("OAK", "ATH"), ("Oakland Athletics", "ATH"), ("Athletics", "ATH"),
        ("Cleveland Indians", "CLE"), ("Florida Marlins", "MIA"), ("Tampa Bay Devil Rays", "TB"),
        ("Chi Cubs", "CHC"), ("Chi White Sox", "CWS"), ("NY Mets", "NYM"), ("NY Yankees", "NYY"),
        ("Cubs", "CHC"), ("Blue Jays", "TOR"), ("St Louis Cardinals", "STL"),
        ("st. louis", "STL"), ("Pittsburgh", "PIT"),
    ],
)  # fmt: skip
def test_known_tricky_names(name: str, code: str) -> None:
    assert resolve_team(name) == code


@pytest.mark.parametrize("name", [*sorted(AMBIGUOUS), "los angeles", " new  york ", "chicago"])
def test_city_only_names_of_two_team_cities_are_refused(name: str) -> None:
    with pytest.raises(TeamError) as exc:
        resolve_team(name)
    assert exc.value.error_class == "ambiguous_team"
    assert lookup_team(name) is None


@pytest.mark.parametrize(
    "name",
    ["Los A", "Angels of", "Dodger", "Los Angeles A", "Yankee", "XYZ", "", "LA Galaxy",
     "Pittsburgh Steelers", "Cardinal", "TBD", "Montreal Canadiens", "Brooklyn"],
)  # fmt: skip
def test_unknown_names_are_refused_never_substring_matched(name: str) -> None:
    with pytest.raises(TeamError) as exc:
        resolve_team(name)
    assert exc.value.error_class == "unknown_team"


@pytest.mark.parametrize("bad", [None, 123, b"PIT", ["PIT"]])
def test_non_strings_are_unknown(bad: object) -> None:
    assert lookup_team(bad) is None
    with pytest.raises(TeamError) as exc:
        resolve_team(bad)
    assert exc.value.error_class == "unknown_team"


def _capture_names() -> list[tuple[str, str]]:
    """Every (source, team name or code) that appears in the real captures (tests/fixtures)."""
    names: set[tuple[str, str]] = set()
    for ev in json.loads(ODDS_API.read_text()):
        names.update({("odds_api", ev["home_team"]), ("odds_api", ev["away_team"])})
        for bm in ev["bookmakers"]:
            for mk in bm["markets"]:
                names.update(("odds_api", o["name"]) for o in mk["outcomes"])
    for g in json.loads(SBD.read_text())["games"]:
        for role in ("home", "away"):
            t = g[role]
            names.update(
                ("sbd", n)
                for n in (t["code"], t["stageName"], t["team"], f"{t['city']} {t['team']}")
            )
            if t["city"] not in ("Chicago", "Los Angeles", "New York"):
                names.add(("sbd", t["city"]))
    with AN_TEAMS.open() as f:
        for row in csv.DictReader(f):
            for col in ("full_name", "display_name", "short_name", "abbr"):
                names.add(("action_network", row[col]))
    with PINNACLE.open() as f:
        for row in csv.DictReader(f):
            names.update({("pinnacle", row["AwayTeam"]), ("pinnacle", row["HomeTeam"])})
    with SBRO.open() as f:
        names.update(("sbro", row["Team"]) for row in csv.DictReader(f))
    return sorted(names)


CAPTURE_NAMES = _capture_names()


def test_capture_names_collected() -> None:
    sources = {s for s, _ in CAPTURE_NAMES}
    assert sources == {"odds_api", "sbd", "action_network", "pinnacle", "sbro"}
    assert len(CAPTURE_NAMES) > 150


@pytest.mark.parametrize(("source", "name"), CAPTURE_NAMES)
def test_every_capture_name_resolves(source: str, name: str) -> None:
    assert resolve_team(name) in CODES, source


def test_action_network_csv_ids_and_names_agree() -> None:
    with AN_TEAMS.open() as f:
        rows = list(csv.DictReader(f))
    assert len({r["id"] for r in rows}) == 30
    for r in rows:
        code = action_network_team(r["id"])
        assert code == resolve_team(r["full_name"]) == resolve_team(r["abbr"])
    assert set(ACTION_NETWORK_TEAM_IDS.values()) == set(CODES)
    assert action_network_team("nope") is None
    assert action_network_team(1) is None


def test_sbro_codes_map_to_all_thirty() -> None:
    codes = {resolve_team(n) for s, n in CAPTURE_NAMES if s == "sbro"}
    assert codes == set(CODES)
