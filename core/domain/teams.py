"""Canonical MLB franchise codes and the explicit alias table every source is resolved through.

Lookup is exact on a normalized key (case-folded, whitespace collapsed, dots dropped), never by
substring: substring matching turns the SBR code "LOS" (Dodgers) into the Angels. A name that
matches nothing is ``unknown_team``; a city shared by two franchises ("Los Angeles", "New York",
"Chicago", "LA", "NY") is ``ambiguous_team``. Neither is ever guessed.

Aliases are grouped by family so that tests can cover each one; each family below was checked
against the real captures in tests/fixtures (Odds API, SBD, Action Network, Pinnacle, SBRO).
"""

from __future__ import annotations

from typing import Final

UNKNOWN_TEAM: Final = "unknown_team"
AMBIGUOUS_TEAM: Final = "ambiguous_team"

CODES: Final[tuple[str, ...]] = (
    "ARI", "ATL", "BAL", "BOS", "CHC", "CWS", "CIN", "CLE", "COL", "DET",
    "HOU", "KC", "LAA", "LAD", "MIA", "MIL", "MIN", "NYM", "NYY", "ATH",
    "PHI", "PIT", "SD", "SF", "SEA", "STL", "TB", "TEX", "TOR", "WSH",
)  # fmt: skip
CODE_SET: Final[frozenset[str]] = frozenset(CODES)

# Current full names (Odds API, Action Network full_name, Pinnacle, SBD "city team").
FULL_NAMES: Final[dict[str, str]] = {
    "Arizona Diamondbacks": "ARI", "Atlanta Braves": "ATL", "Baltimore Orioles": "BAL",
    "Boston Red Sox": "BOS", "Chicago Cubs": "CHC", "Chicago White Sox": "CWS",
    "Cincinnati Reds": "CIN", "Cleveland Guardians": "CLE", "Colorado Rockies": "COL",
    "Detroit Tigers": "DET", "Houston Astros": "HOU", "Kansas City Royals": "KC",
    "Los Angeles Angels": "LAA", "Los Angeles Dodgers": "LAD", "Miami Marlins": "MIA",
    "Milwaukee Brewers": "MIL", "Minnesota Twins": "MIN", "New York Mets": "NYM",
    "New York Yankees": "NYY", "Athletics": "ATH", "Philadelphia Phillies": "PHI",
    "Pittsburgh Pirates": "PIT", "San Diego Padres": "SD", "San Francisco Giants": "SF",
    "Seattle Mariners": "SEA", "St. Louis Cardinals": "STL", "Tampa Bay Rays": "TB",
    "Texas Rangers": "TEX", "Toronto Blue Jays": "TOR", "Washington Nationals": "WSH",
    "Arizona D-backs": "ARI", "Saint Louis Cardinals": "STL",
}  # fmt: skip

# Former names of the same franchise (Pinnacle 2016, SBD still says "Cleveland Indians").
OLD_NAMES: Final[dict[str, str]] = {
    "Cleveland Indians": "CLE", "Oakland Athletics": "ATH", "Oakland A's": "ATH",
    "Sacramento Athletics": "ATH", "Las Vegas Athletics": "ATH", "Florida Marlins": "MIA",
    "Tampa Bay Devil Rays": "TB", "Los Angeles Angels of Anaheim": "LAA",
    "Anaheim Angels": "LAA", "California Angels": "LAA", "Montreal Expos": "WSH",
}  # fmt: skip

# Nicknames without city (Action Network display_name/short_name, SBD "team").
NICKNAMES: Final[dict[str, str]] = {
    "Diamondbacks": "ARI", "D-backs": "ARI", "Dbacks": "ARI", "Braves": "ATL",
    "Orioles": "BAL", "Red Sox": "BOS", "Cubs": "CHC", "White Sox": "CWS", "Reds": "CIN",
    "Guardians": "CLE", "Indians": "CLE", "Rockies": "COL", "Tigers": "DET",
    "Astros": "HOU", "Royals": "KC", "Angels": "LAA", "Dodgers": "LAD", "Marlins": "MIA",
    "Brewers": "MIL", "Twins": "MIN", "Mets": "NYM", "Yankees": "NYY", "A's": "ATH",
    "Phillies": "PHI", "Pirates": "PIT", "Padres": "SD", "Giants": "SF",
    "Mariners": "SEA", "Cardinals": "STL", "Rays": "TB", "Devil Rays": "TB",
    "Rangers": "TEX", "Blue Jays": "TOR", "Nationals": "WSH", "Expos": "WSH",
}  # fmt: skip

# City-only display names of one-team cities (SBD stageName "Pittsburgh", AN location).
CITY_NAMES: Final[dict[str, str]] = {
    "Arizona": "ARI", "Atlanta": "ATL", "Baltimore": "BAL", "Boston": "BOS",
    "Cincinnati": "CIN", "Cleveland": "CLE", "Colorado": "COL", "Detroit": "DET",
    "Houston": "HOU", "Kansas City": "KC", "Anaheim": "LAA", "Miami": "MIA",
    "Florida": "MIA", "Milwaukee": "MIL", "Minnesota": "MIN", "Oakland": "ATH",
    "Sacramento": "ATH", "Philadelphia": "PHI", "Pittsburgh": "PIT", "San Diego": "SD",
    "San Francisco": "SF", "Seattle": "SEA", "St. Louis": "STL", "Saint Louis": "STL",
    "Tampa Bay": "TB", "Texas": "TEX", "Toronto": "TOR", "Washington": "WSH",
}  # fmt: skip

# Short display names with an abbreviated city (SBD stageName, sportsbook UIs).
STAGE_NAMES: Final[dict[str, str]] = {
    "Chi Cubs": "CHC", "Chi White Sox": "CWS", "LA Angels": "LAA", "LA Dodgers": "LAD",
    "NY Mets": "NYM", "NY Yankees": "NYY", "Chicago (N)": "CHC", "Chicago (A)": "CWS",
    "Los Angeles (N)": "LAD", "Los Angeles (A)": "LAA", "New York (N)": "NYM",
    "New York (A)": "NYY", "Arizona Dbacks": "ARI",
}  # fmt: skip

# Codes other than the canonical ones: SBR/SBRO (CUB, SDG, SFO, TAM, KAN, WAS, LOS, CHW),
# Baseball-Reference (KCR, TBR, SDP, SFG, WSN, ANA, FLA, OAK), Retrosheet (CHN, CHA, NYA, NYN,
# LAN, SLN, SDN, SFN, KCA, TBA), SBD (CHW, WAS, OAK) and common feed spellings (AZ). "CHI" is
# ambiguous, not an alias. Action Network abbr equals the canonical code.
CODE_ALIASES: Final[dict[str, str]] = {
    "AZ": "ARI", "ARZ": "ARI", "CUB": "CHC", "CHN": "CHC", "CHW": "CWS", "CHA": "CWS",
    "KAN": "KC", "KCR": "KC", "KCA": "KC", "ANA": "LAA", "CAL": "LAA", "LOS": "LAD",
    "LAN": "LAD", "FLA": "MIA", "NYN": "NYM", "NYA": "NYY", "OAK": "ATH", "SDG": "SD",
    "SDP": "SD", "SDN": "SD", "SFO": "SF", "SFG": "SF", "SFN": "SF", "SLN": "STL",
    "TAM": "TB", "TBR": "TB", "TBA": "TB", "WAS": "WSH", "WSN": "WSH", "MON": "WSH",
}  # fmt: skip

# Names shared by two franchises: refused, never guessed.
AMBIGUOUS: Final[frozenset[str]] = frozenset(
    {"Los Angeles", "LA", "L.A.", "New York", "NY", "Chicago", "Chi", "CHI", "NYC"}
)

# Action Network team ids (tests/fixtures/action-network/mlb_teams_2025-07-01.csv).
ACTION_NETWORK_TEAM_IDS: Final[dict[int, str]] = {
    187: "BAL", 188: "TOR", 189: "TB", 190: "BOS", 191: "NYY", 192: "KC", 193: "CLE",
    194: "CWS", 195: "DET", 196: "MIN", 197: "SEA", 198: "LAA", 199: "HOU", 200: "TEX",
    201: "ATH", 202: "CIN", 203: "PIT", 204: "LAD", 205: "ARI", 206: "CHC", 207: "STL",
    208: "MIL", 209: "SF", 210: "COL", 211: "SD", 212: "PHI", 213: "NYM", 214: "MIA",
    215: "ATL", 216: "WSH",
}  # fmt: skip

ALIAS_FAMILIES: Final[dict[str, dict[str, str]]] = {
    "full_names": FULL_NAMES,
    "old_names": OLD_NAMES,
    "nicknames": NICKNAMES,
    "city_names": CITY_NAMES,
    "stage_names": STAGE_NAMES,
    "code_aliases": CODE_ALIASES,
}


class TeamError(ValueError):
    """A team name that cannot be resolved; ``error_class`` is the dead-letter class."""

    def __init__(self, error_class: str, reason: str) -> None:
        super().__init__(reason)
        self.error_class = error_class
        self.reason = reason


def normalize(name: str) -> str:
    """Lookup key: case-folded, dots removed, whitespace collapsed ("St. Louis" = "st louis")."""
    return " ".join(name.replace(".", " ").split()).casefold()


def _build() -> tuple[dict[str, str], frozenset[str]]:
    table: dict[str, str] = {}
    for code in CODES:
        table[normalize(code)] = code
    for family, mapping in ALIAS_FAMILIES.items():
        for alias, code in mapping.items():
            if code not in CODE_SET:
                raise AssertionError(f"{family}: {alias!r} maps to unknown code {code!r}")
            key = normalize(alias)
            prev = table.get(key)
            if prev is not None and prev != code:
                raise AssertionError(f"{family}: {alias!r} maps to {code} and {prev}")
            table[key] = code
    ambiguous = frozenset(normalize(a) for a in AMBIGUOUS)
    clash = ambiguous & table.keys()
    if clash:
        raise AssertionError(f"ambiguous names also in the alias table: {sorted(clash)}")
    return table, ambiguous


_TABLE, _AMBIGUOUS = _build()
# Raw-string memo in front of normalize(): feeds repeat the same few dozen spellings.
_MEMO: dict[str, str | None] = {}


def lookup_team(name: object) -> str | None:
    """Canonical code of a team name or code, or None when it is unknown or ambiguous."""
    if type(name) is not str:
        return None
    hit = _MEMO.get(name)  # type: ignore[arg-type]
    if hit is not None or name in _MEMO:
        return hit
    code = _TABLE.get(normalize(name))  # type: ignore[arg-type]
    if len(_MEMO) < 10_000:
        _MEMO[name] = code  # type: ignore[index]
    return code


def resolve_team(name: object) -> str:
    """Canonical code of a team name or code; raises TeamError (unknown/ambiguous) otherwise."""
    code = lookup_team(name)
    if code is not None:
        return code
    if type(name) is str and normalize(name) in _AMBIGUOUS:  # type: ignore[arg-type]
        raise TeamError(AMBIGUOUS_TEAM, f"team name {name!r} is shared by two franchises")
    raise TeamError(UNKNOWN_TEAM, f"team name {name!r} matches no MLB franchise")


def action_network_team(team_id: object) -> str | None:
    """Canonical code of an Action Network team id (int or numeric string), else None."""
    try:
        return ACTION_NETWORK_TEAM_IDS.get(int(team_id))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
