"""Secrets come from the environment or a file, never config.toml, and never show in messages."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from core.kafka_config import client_config, faust_credentials, security_config
from core.settings import SecurityProtocol, SettingsError, load_settings

SECRET = "Zq7-distinctive-s3cret/with:odd@chars"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ODDSFLOW_KAFKA__SASL_PASSWORD",
        "ODDSFLOW_KAFKA__SASL_PASSWORD_FILE",
        "ODDSFLOW_POSTGRES__PASSWORD",
        "ODDSFLOW_POSTGRES__PASSWORD_FILE",
        "DATABASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)


def _sasl_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODDSFLOW_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("ODDSFLOW_KAFKA__SASL_USERNAME", "svc")


def test_kafka_password_from_the_environment_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    _sasl_env(monkeypatch)
    monkeypatch.setenv("ODDSFLOW_KAFKA__SASL_PASSWORD", SECRET)
    s = load_settings()
    assert s.kafka.security_protocol is SecurityProtocol.SASL_SSL
    assert s.kafka.password == SECRET
    assert SECRET not in repr(s) and SECRET not in str(s.kafka)
    assert SECRET not in str(s.model_dump())


def test_kafka_password_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _sasl_env(monkeypatch)
    secret_file = tmp_path / "kafka.pw"
    secret_file.write_text(SECRET + "\n")
    monkeypatch.setenv("ODDSFLOW_KAFKA__SASL_PASSWORD_FILE", str(secret_file))
    assert load_settings().kafka.password == SECRET


def test_an_unreadable_password_file_names_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _sasl_env(monkeypatch)
    missing = tmp_path / "nope.pw"
    monkeypatch.setenv("ODDSFLOW_KAFKA__SASL_PASSWORD_FILE", str(missing))
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "kafka" in str(err.value) and str(missing) in str(err.value)


def test_sasl_without_a_password_is_refused_with_the_variables_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _sasl_env(monkeypatch)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "ODDSFLOW_KAFKA__SASL_PASSWORD" in str(err.value)


def test_a_refusal_never_echoes_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    # No username: the whole kafka section is refused, and pydantic's input is that section.
    monkeypatch.setenv("ODDSFLOW_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("ODDSFLOW_KAFKA__SASL_PASSWORD", SECRET)
    monkeypatch.setenv("ODDSFLOW_POSTGRES__PASSWORD", SECRET + "pg")
    monkeypatch.setenv("ODDSFLOW_POSTGRES__PORT", "not-a-port")
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert "kafka" in message and "postgres.port" in message
    assert SECRET not in message
    assert "<redacted>" in message


@pytest.mark.parametrize(
    ("toml", "key", "env"),
    [
        (
            '[kafka]\nsasl_password = "{s}"\n',
            "kafka.sasl_password",
            "ODDSFLOW_KAFKA__SASL_PASSWORD",
        ),
        ('[postgres]\npassword = "{s}"\n', "postgres.password", "ODDSFLOW_POSTGRES__PASSWORD"),
        ('[simulator]\napi_key = "{s}"\n', "simulator.api_key", "ODDSFLOW_SIMULATOR__API_KEY"),
    ],
)
def test_a_secret_in_config_toml_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, toml: str, key: str, env: str
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(toml.format(s=SECRET))
    monkeypatch.setenv("ODDSFLOW_CONFIG", str(cfg))
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert key in message and env in message and "never go in a config file" in message
    assert SECRET not in message


def test_a_password_file_path_in_config_toml_is_allowed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret_file = tmp_path / "pg.pw"
    secret_file.write_text(SECRET)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[postgres]\npassword_file = "{secret_file}"\n')
    monkeypatch.setenv("ODDSFLOW_CONFIG", str(cfg))
    assert load_settings().postgres.password.get_secret_value() == SECRET  # type: ignore[union-attr]


def test_postgres_dsn_quotes_the_password_and_display_hides_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ODDSFLOW_POSTGRES__PASSWORD", SECRET)
    monkeypatch.setenv("ODDSFLOW_POSTGRES__SSLMODE", "verify-full")
    monkeypatch.setenv("ODDSFLOW_POSTGRES__SSLROOTCERT", "/etc/ca dir/ca.pem")
    pg = load_settings().postgres
    parts = urlsplit(pg.dsn)
    assert unquote(parts.password or "") == SECRET
    assert parts.hostname == "127.0.0.1" and parts.port == 15432
    assert "sslmode=verify-full" in parts.query and "sslrootcert=/etc/ca+dir/ca.pem" in parts.query
    assert SECRET not in pg.display_dsn and "<redacted>" in pg.display_dsn


def test_database_url_password_is_hidden_in_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:hunter2@db:5432/x?sslmode=require")
    pg = load_settings().postgres
    assert pg.dsn.endswith("u:hunter2@db:5432/x?sslmode=require")
    assert pg.display_dsn == "postgresql://u:<redacted>@db:5432/x?sslmode=require"


def test_every_client_config_carries_tls_and_scram(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _sasl_env(monkeypatch)
    monkeypatch.setenv("ODDSFLOW_KAFKA__SASL_PASSWORD", SECRET)
    ca = tmp_path / "ca.pem"
    monkeypatch.setenv("ODDSFLOW_KAFKA__CA_FILE", str(ca))
    s = load_settings()
    cfg = client_config(s, **{"group.id": "g"})
    assert cfg["security.protocol"] == "SASL_SSL"
    assert cfg["sasl.mechanism"] == "SCRAM-SHA-512"
    assert cfg["sasl.username"] == "svc" and cfg["sasl.password"] == SECRET
    assert cfg["ssl.ca.location"] == str(ca)
    assert cfg["ssl.endpoint.identification.algorithm"] == "https"
    assert cfg["group.id"] == "g"


def test_plaintext_adds_no_security_keys_and_no_faust_credentials() -> None:
    s = load_settings()
    assert security_config(s) == {}
    assert faust_credentials(s) is None
    assert "security.protocol" not in client_config(s)


def test_the_benchmarks_faust_app_gets_scram_over_tls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bench.faust_app import create_app

    _sasl_env(monkeypatch)
    monkeypatch.setenv("ODDSFLOW_KAFKA__SASL_PASSWORD", SECRET)
    app = create_app(load_settings(state_dir=tmp_path), "features")
    creds = app.conf.broker_credentials
    assert creds.protocol.value == "SASL_SSL" and creds.mechanism.value == "SCRAM-SHA-512"
    assert creds.username == "svc" and creds.password == SECRET
    assert creds.ssl_context.check_hostname is True
    assert SECRET not in repr(creds)
