"""A config file with a wrong type or value is refused at start, naming the key and the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("toml", "key", "shown"),
    [
        ('[kafka]\npartitions = "two"\n', "kafka.partitions", "'two'"),
        ('[kafka]\nsecurity_protocol = "TLS"\n', "kafka.security_protocol", "'TLS'"),
        ('[kafka]\nsasl_mechanism = "PLAIN"\n', "kafka.sasl_mechanism", "'PLAIN'"),
        ("[kafka]\ninternal_port = 70000\n", "kafka.internal_port", "70000"),
        ('[postgres]\nsslmode = "verify"\n', "postgres.sslmode", "'verify'"),
        ("[postgres]\nport = [5432]\n", "postgres.port", "[5432]"),
        ("[pipeline.zones]\nraw = 5\n", "pipeline.zones.raw", "5"),
        ('[features]\nvelocity_windows_minutes = "5,15"\n', "velocity_windows_minutes", "'5,15'"),
        ('[pipeline]\nenabled = "maybe"\n', "pipeline.enabled", "'maybe'"),
        ("[simulator]\nbooks = 99\n", "simulator.books", "99"),
        ("[nonsense]\nx = 1\n", "nonsense", "x"),
    ],
)
def test_wrong_types_in_the_config_file_name_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, toml: str, key: str, shown: str
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(toml)
    monkeypatch.setenv("ODDSFLOW_CONFIG", str(cfg))
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert message.startswith("oddsflow: bad configuration")
    assert key in message and shown in message
    assert "Traceback" not in message


def test_a_config_file_that_is_not_toml_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[kafka\npartitions = 2\n")
    monkeypatch.setenv("ODDSFLOW_CONFIG", str(cfg))
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(cfg) in str(err.value) and "not valid TOML" in str(err.value)
    assert "line 1" in str(err.value)
