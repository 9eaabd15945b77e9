"""Where the tests' real captures live: ``tests/fixtures/`` in the repository (see its README)."""

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"

ODDS_API = FIXTURES / "odds-api-v4" / "mlb_h2h_2024-05-24.json"
SBD = FIXTURES / "sbd" / "mlb_odds_2025-06-13.json"
SBD_ONE = FIXTURES / "sbd" / "mlb_odds_2025-06-13_one_game.json"
AN_TEAMS = FIXTURES / "action-network" / "mlb_teams_2025-07-01.csv"
AN_V1_ODDS = FIXTURES / "action-network" / "scoreboard_v1_odds_entries_2019-09-12_nfl.json"
AN_V2_FIXTURE = FIXTURES / "action-network" / "scoreboard_v2_markets_team_fixture.json"
PINNACLE = FIXTURES / "pinnacle" / "mlb2016_line_history_20games.csv"
SBRO = FIXTURES / "sbro" / "mlb_odds_2018_open_close.csv"
