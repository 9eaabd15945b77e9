"""Settings: config.toml and environment into one typed object; bad values fail with the key."""

from __future__ import annotations

import pytest

from core.settings import PipelineMode, SettingsError, load_settings


def test_config_toml_is_read() -> None:
    s = load_settings()
    assert s.pipeline.mode is PipelineMode.FULL
    assert s.pipeline.zones.staging == "core_betting"
    assert s.pipeline.retention.curated_retention_days == -1
    assert s.features.velocity_windows_minutes == [5, 15, 60]


def test_environment_overrides_nested_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODDSFLOW_PIPELINE__MODE", "staging_only")
    monkeypatch.setenv("ODDSFLOW_KAFKA__BOOTSTRAP_SERVERS", "broker:9999")
    s = load_settings()
    assert s.pipeline.mode is PipelineMode.STAGING_ONLY
    assert s.kafka.host == "broker" and s.kafka.port == 9999


def test_database_url_names_an_existing_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/x")
    assert load_settings().postgres.dsn == "postgresql://u:p@db:5432/x"


@pytest.mark.parametrize(
    ("env", "value", "key"),
    [
        ("ODDSFLOW_PIPELINE__MODE", "everything", "pipeline.mode"),
        ("ODDSFLOW_PIPELINE__RETENTION__RAW_RETENTION_DAYS", "-5", "raw_retention_days"),
        ("ODDSFLOW_PIPELINE__RETENTION__STAGING_RETENTION_DAYS", "0", "staging_retention_days"),
        ("ODDSFLOW_PIPELINE__ZONES__RAW", "raw-data; drop", "pipeline.zones.raw"),
        ("ODDSFLOW_PIPELINE__QUALITY_THRESHOLD", "1.5", "quality_threshold"),
        ("ODDSFLOW_POSTGRES__PORT", "seventy", "postgres.port"),
    ],
)
def test_bad_values_fail_at_start_with_key_and_reason(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, key: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert "bad configuration" in message and key in message
    assert repr(value) in message or value in message


def test_a_config_file_with_wrong_types_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[pipeline]\nbatch_size = "lots"\n')
    monkeypatch.setenv("ODDSFLOW_CONFIG", str(cfg))
    with pytest.raises(SettingsError, match=r"pipeline\.batch_size"):
        load_settings()


def test_cli_says_what_to_do_when_the_database_is_down(tmp_path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "oddsflow.cli", "data", "status", "--zone", "staging"],
        env={"PATH": "/usr/bin:/bin", "ODDSFLOW_POSTGRES__PORT": "1",
             "ODDSFLOW_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert "oddsflow services up" in out.stderr or "Kafka" in out.stderr
