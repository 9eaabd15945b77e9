"""Security on real servers: Kafka with TLS + SCRAM, Postgres with TLS (verify-full) and roles.

A private broker (SASL_SSL listener, SCRAM-SHA-512) and a private Postgres (TLS only, SCRAM
passwords) start once for this module, each with a certificate from a local CA made for the
session, on free ports and in a temporary state folder: the shared local services are never
touched. A slice of the pipeline runs through them — the publisher, the staging faust worker and
the sink as `oddsflow -v worker` processes, a plain consumer — and every log of that run is
grepped for the passwords.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from core.admin import create_topics
from core.kafka_config import consumer_config
from core.settings import PROJECT_ROOT, Settings, load_settings
from core.topics import raw_topic, topic_name
from oddsflow.services import kafka as kafka_service
from oddsflow.services import postgres as pg_service
from producers.collect import publish_simulation
from producers.simulator import Simulator
from sinks.migrate import migrate
from tests.helpers import free_ports

KAFKA_PASSWORD = "kfk-" + secrets.token_hex(12) + "-Distinctive"
PG_PASSWORD = "pgs-" + secrets.token_hex(12) + "-Distinctive"
SINK_PASSWORD = "snk-" + secrets.token_hex(12) + "-Distinctive"
ANALYST_PASSWORD = "ana-" + secrets.token_hex(12) + "-Distinctive"
ALL_SECRETS = (KAFKA_PASSWORD, PG_PASSWORD, SINK_PASSWORD, ANALYST_PASSWORD)
SHARED_LIBS = PROJECT_ROOT / ".local" / "kafka" / "libs"


@pytest.fixture(scope="module")
def secure() -> Iterator[Settings]:
    """A private TLS + SCRAM broker and a private TLS Postgres, started once, stopped after.

    Their state lives in a folder of its own, not pytest's: other sessions rotate pytest's
    temporary folders (and reset their permissions) while these servers run.
    """
    if not (SHARED_LIBS / ".complete").exists():
        pytest.skip("the local Kafka jars are not assembled (run `oddsflow services up` once)")
    state = Path(tempfile.mkdtemp(prefix="oddsflow-secure-"))
    (state / "kafka").mkdir()
    (state / "kafka" / "libs").symlink_to(SHARED_LIBS)
    kport, cport, iport, pport = free_ports(4)
    s = load_settings(
        state_dir=state,
        kafka={
            "bootstrap_servers": f"127.0.0.1:{kport}",
            "controller_port": cport,
            "internal_port": iport,
            "security_protocol": "SASL_SSL",
            "sasl_username": "oddsflow",
            "sasl_password": KAFKA_PASSWORD,
            "ca_file": str(state / "tls" / "ca.pem"),
            "partitions": 2,
        },
        postgres={
            "port": pport,
            "password": PG_PASSWORD,
            "sslmode": "verify-full",
            "sslrootcert": str(state / "tls" / "ca.pem"),
            "url": None,
        },
    )
    started = time.monotonic()
    try:
        kafka_service.start(s)
        pg_service.start(s)
        print(f"\nprivate TLS Kafka + Postgres up in {time.monotonic() - started:.1f}s")
        yield s
    finally:
        try:
            pg_service.stop(s)
        finally:
            kafka_service.stop(s)
            shutil.rmtree(state, ignore_errors=True)


def _per_test(s: Settings) -> Settings:
    tag = "s" + uuid.uuid4().hex[:8]
    data = s.model_dump()
    data["kafka"]["topic_prefix"] = f"{tag}."
    data["pipeline"]["zones"] = {
        "raw": f"{tag}_raw",
        "staging": f"{tag}_staging",
        "curated": f"{tag}_curated",
        "operational": f"{tag}_ops",
    }
    return Settings(**data)


def _env(s: Settings, secret_dir: Path, pg_user: str, pg_password: str) -> dict[str, str]:
    """Child-process environment: passwords in files (never argv or config), TLS on."""
    secret_dir.mkdir(parents=True, exist_ok=True)
    kafka_pw, pg_pw = secret_dir / "kafka.pw", secret_dir / f"{pg_user}.pw"
    for path, value in ((kafka_pw, KAFKA_PASSWORD), (pg_pw, pg_password)):
        path.touch(mode=0o600)
        path.write_text(value + "\n")
    z = s.pipeline.zones
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODDSFLOW_")}
    env.pop("DATABASE_URL", None)
    env.update(
        {
            "ODDSFLOW_STATE_DIR": str(s.state_dir),
            "ODDSFLOW_KAFKA__BOOTSTRAP_SERVERS": s.kafka.bootstrap_servers,
            "ODDSFLOW_KAFKA__TOPIC_PREFIX": s.kafka.topic_prefix,
            "ODDSFLOW_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "ODDSFLOW_KAFKA__SASL_USERNAME": s.kafka.sasl_username or "",
            "ODDSFLOW_KAFKA__SASL_PASSWORD_FILE": str(kafka_pw),
            "ODDSFLOW_KAFKA__CA_FILE": str(s.kafka.ca_file),
            "ODDSFLOW_POSTGRES__HOST": s.postgres.host,
            "ODDSFLOW_POSTGRES__PORT": str(s.postgres.port),
            "ODDSFLOW_POSTGRES__USER": pg_user,
            "ODDSFLOW_POSTGRES__PASSWORD_FILE": str(pg_pw),
            "ODDSFLOW_POSTGRES__SSLMODE": "verify-full",
            "ODDSFLOW_POSTGRES__SSLROOTCERT": str(s.postgres.sslrootcert),
            "ODDSFLOW_PIPELINE__ZONES__RAW": z.raw,
            "ODDSFLOW_PIPELINE__ZONES__STAGING": z.staging,
            "ODDSFLOW_PIPELINE__ZONES__CURATED": z.curated,
            "ODDSFLOW_PIPELINE__ZONES__OPERATIONAL": z.operational,
        }
    )
    return env


async def _login_role(s: Settings, user: str, password: str, *roles: str) -> None:
    """A login user (SCRAM password) that holds only ``roles``; made by the owner."""
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        await conn.execute(f'DROP ROLE IF EXISTS "{user}"')
        # CREATE ROLE takes no bind parameters: the server quotes the password as a literal.
        literal = await conn.fetchval("SELECT quote_literal($1::text)", password)
        await conn.execute(f'CREATE ROLE "{user}" LOGIN PASSWORD {literal}')
        for role in roles:
            await conn.execute(f'GRANT {role} TO "{user}"')
    finally:
        await conn.close()


def _as_user(s: Settings, user: str, password: str) -> Settings:
    data = s.model_dump()
    data["postgres"].update({"user": user, "password": password})
    return Settings(**data)


@dataclass
class SliceRun:
    settings: Settings
    published: int
    failed: int
    raw_rows: int
    staged_rows: int
    consumed_raw: int
    log_dir: Path
    took: float


@pytest.fixture(scope="module")
def slice_run(secure: Settings) -> Iterator[SliceRun]:
    """Publisher + staging worker + sink worker + a plain consumer, all over TLS + SCRAM."""
    s = _per_test(secure)
    started = time.monotonic()
    create_topics(s)
    asyncio.run(migrate(s))
    sink_user = f"{s.kafka.topic_prefix.rstrip('.')}_sink"
    asyncio.run(_login_role(s, sink_user, SINK_PASSWORD, "oddsflow_sink"))
    log_dir = secure.state_dir / "run-logs"
    log_dir.mkdir()
    env = _env(s, secure.state_dir / "secrets", sink_user, SINK_PASSWORD)

    # The publisher runs here: its log records (DEBUG, every logger) go to a file too.
    handler = logging.FileHandler(log_dir / "publisher.log")
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for role in ("staging", "sink"):
            with open(log_dir / f"{role}.log", "wb") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "oddsflow.cli", "-v", "worker", role],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                        cwd=PROJECT_ROOT,
                        start_new_session=True,
                    )
                )
        sim = Simulator(seed=5, games=2, books=3, ticks=20, tick_seconds=30)
        pub = publish_simulation(s, sim, progress=False)
        raw_rows, staged_rows = asyncio.run(
            _wait_rows(s, expected_raw=pub.stats.acked, procs=procs)
        )
        consumed = _consume_all(s, topic_name(s, raw_topic("simulator")), pub.stats.acked)
        yield SliceRun(
            s,
            pub.stats.acked,
            pub.stats.failed,
            raw_rows,
            staged_rows,
            consumed,
            log_dir,
            time.monotonic() - started,
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


async def _wait_rows(
    s: Settings, expected_raw: int, procs: list[subprocess.Popen[bytes]], timeout: float = 150
) -> tuple[int, int]:
    z = s.pipeline.zones
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        deadline = time.monotonic() + timeout
        while True:
            raw = await conn.fetchval(f"SELECT count(*) FROM {z.raw}.odds_envelopes")
            staged = await conn.fetchval(f"SELECT count(*) FROM {z.staging}.odds_lines")
            if raw == expected_raw and staged > 0:
                await asyncio.sleep(2)  # let the staging worker finish the tail
                staged = await conn.fetchval(f"SELECT count(*) FROM {z.staging}.odds_lines")
                return raw, staged
            dead = [p.args for p in procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise AssertionError(f"raw {raw}/{expected_raw}, staged {staged}; exited: {dead}")
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def _consume_all(s: Settings, topic: str, expected: int, timeout: float = 60) -> int:
    consumer = Consumer(consumer_config(s, f"{s.kafka.topic_prefix}plain-reader"))
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        while seen < expected and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                seen += 1
    finally:
        consumer.close()
    return seen


# --- 1. Kafka: TLS + SCRAM for every client ------------------------------------------------


def test_pipeline_slice_runs_over_tls_and_scram(slice_run: SliceRun) -> None:
    r = slice_run
    # 2 games x 3 books x 20 ticks, one raw envelope each: all acknowledged over SASL_SSL.
    assert (r.published, r.failed) == (120, 0)
    assert r.raw_rows == 120, "the sink (SCRAM to Kafka, TLS to Postgres) wrote every envelope"
    assert r.staged_rows > 0, "the staging faust worker consumed and produced over SASL_SSL"
    assert r.consumed_raw == 120, "a plain confluent-kafka consumer read the raw topic"
    print(f"\nsecure slice: {r.raw_rows} raw, {r.staged_rows} staged lines in {r.took:.1f}s")


def test_the_sink_ran_as_a_least_privilege_user(slice_run: SliceRun) -> None:
    async def check() -> tuple[int, str]:
        conn = await asyncpg.connect(slice_run.settings.postgres.dsn)
        try:
            z = slice_run.settings.pipeline.zones
            rows = await conn.fetchval(f"SELECT count(*) FROM {z.raw}.odds_envelopes")
            user = f"{slice_run.settings.kafka.topic_prefix.rstrip('.')}_sink"
            superuser = await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname=$1", user)
            return rows, "superuser" if superuser else "plain"
        finally:
            await conn.close()

    rows, kind = asyncio.run(check())
    assert rows == 120 and kind == "plain"


def _client_errors(s: Settings, wanted: int, seconds: float = 15) -> list[KafkaError]:
    """The errors a consumer configured by ``s`` reports until one has code ``wanted``."""
    errors: list[KafkaError] = []
    consumer = Consumer(consumer_config(s, "probe", error_cb=errors.append, log_level=0))
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not any(e.code() == wanted for e in errors):
            consumer.poll(0.5)
            with contextlib.suppress(KafkaException):
                consumer.list_topics(timeout=0.5)
    finally:
        consumer.close()
    return errors


def test_wrong_kafka_password_is_refused_with_a_clear_message(secure: Settings) -> None:
    data = secure.model_dump()
    data["kafka"]["sasl_password"] = "not-the-password"
    errors = _client_errors(Settings(**data), KafkaError._AUTHENTICATION)
    auth = [e.str() for e in errors if e.code() == KafkaError._AUTHENTICATION]
    assert auth, [e.str() for e in errors]
    assert "Authentication failed" in auth[0] and "invalid credentials" in auth[0], auth[0]
    assert "SCRAM-SHA-512" in auth[0]
    assert all("not-the-password" not in e.str() for e in errors)


def test_the_cli_refuses_a_wrong_password_without_echoing_it(
    secure: Settings, tmp_path: Path
) -> None:
    env = _env(secure, tmp_path, "oddsflow", PG_PASSWORD)
    (tmp_path / "kafka.pw").write_text("Wrong-" + KAFKA_PASSWORD)
    proc = subprocess.run(
        [sys.executable, "-m", "oddsflow.cli", "topics", "create"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    # librdkafka's own line comes first and says why; the CLI then exits non-zero.
    first = out.strip().splitlines()[0]
    assert "SASL authentication error" in first and "invalid credentials" in first, out
    assert KAFKA_PASSWORD not in out


def test_plaintext_and_unverified_clients_are_refused(secure: Settings, tmp_path: Path) -> None:
    # No TLS at all: the SASL_SSL listener does not answer a plaintext client.
    plain = {"bootstrap.servers": secure.kafka.bootstrap_servers, "log_level": 0}
    with pytest.raises(KafkaException):
        AdminClient({**plain, "socket.timeout.ms": 3000}).list_topics(timeout=5)
    # TLS against a CA that did not sign the broker: the certificate is not trusted.
    data = secure.model_dump()
    data["kafka"]["ca_file"] = "/etc/ssl/certs/ca-certificates.crt"
    errors = [e.str() for e in _client_errors(Settings(**data), KafkaError._SSL)]
    assert any("certificate verify failed" in e for e in errors), errors


# --- 2. Postgres: TLS verify-full and least-privilege roles --------------------------------


async def _expect_denied(conn: asyncpg.Connection, sql: str) -> str:
    with pytest.raises(asyncpg.InsufficientPrivilegeError) as exc:
        await conn.execute(sql)
    return str(exc.value)


def test_postgres_is_tls_only_and_verified(secure: Settings) -> None:
    async def check() -> None:
        conn = await asyncpg.connect(secure.postgres.dsn)
        try:
            row = await conn.fetchrow(
                "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            )
            assert row["ssl"] is True and row["version"] in ("TLSv1.2", "TLSv1.3")
        finally:
            await conn.close()
        pg = secure.postgres
        with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
            await asyncpg.connect(
                host=pg.host, port=pg.port, user=pg.user, password=PG_PASSWORD, ssl=False
            )
        # verify-full with a trust store that does not hold the local CA: refused.
        wrong = ssl.create_default_context(cafile="/etc/ssl/certs/ca-certificates.crt")
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncpg.connect(
                host=pg.host, port=pg.port, user=pg.user, password=PG_PASSWORD, ssl=wrong
            )
        # The local CA and the right name, via an explicit ssl context: accepted.
        good = ssl.create_default_context(cafile=str(pg.sslrootcert))
        conn = await asyncpg.connect(
            host=pg.host, port=pg.port, user=pg.user, password=PG_PASSWORD, ssl=good
        )
        await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(
                host=pg.host, port=pg.port, user=pg.user, password="wrong", ssl=good
            )

    asyncio.run(check())


def test_roles_analyst_reads_curated_only_and_sink_writes_its_zone_only(
    secure: Settings,
) -> None:
    s = _per_test(secure)
    z = s.pipeline.zones
    tag = s.kafka.topic_prefix.rstrip(".")

    async def check() -> dict[str, str]:
        applied = await migrate(s)
        assert "015_roles" in applied
        await _login_role(s, f"{tag}_analyst", ANALYST_PASSWORD, "oddsflow_analyst")
        await _login_role(s, f"{tag}_sinkraw", SINK_PASSWORD, "oddsflow_sink_raw")
        owner = await asyncpg.connect(s.postgres.dsn)
        try:
            await owner.execute(
                f"INSERT INTO {z.operational}.sink_offsets VALUES ('g', 't', 0, 42, now())"
            )
        finally:
            await owner.close()
        said: dict[str, str] = {}
        analyst = await asyncpg.connect(
            _as_user(s, f"{tag}_analyst", ANALYST_PASSWORD).postgres.dsn
        )
        try:
            assert await analyst.fetchval(f"SELECT count(*) FROM {z.curated}.line_velocity") == 0
            assert await analyst.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid=pg_backend_pid()")
            said["insert"] = await _expect_denied(
                analyst,
                f"INSERT INTO {z.curated}.line_velocity SELECT * FROM {z.curated}.line_velocity",
            )
            said["update"] = await _expect_denied(
                analyst, f"UPDATE {z.curated}.consensus SET game_id = game_id"
            )
            said["delete"] = await _expect_denied(analyst, f"DELETE FROM {z.curated}.steam_moves")
            said["staging"] = await _expect_denied(analyst, f"SELECT * FROM {z.staging}.odds_lines")
            said["offsets"] = await _expect_denied(
                analyst, f"SELECT * FROM {z.operational}.sink_offsets"
            )
            said["ddl"] = await _expect_denied(analyst, f"CREATE TABLE {z.curated}.mine (x int)")
        finally:
            await analyst.close()
        sink = await asyncpg.connect(_as_user(s, f"{tag}_sinkraw", SINK_PASSWORD).postgres.dsn)
        try:
            # Its own zone and its bookkeeping: allowed.
            await sink.execute(
                f"INSERT INTO {z.raw}.odds_envelopes SELECT * FROM {z.raw}.odds_envelopes"
            )
            await sink.execute(
                f"UPDATE {z.operational}.sink_offsets SET next_offset = 43 WHERE topic = 't'"
            )
            await sink.execute(f"DELETE FROM {z.raw}.odds_envelopes WHERE false")  # retention
            assert (
                await sink.fetchval(f"SELECT next_offset FROM {z.operational}.sink_offsets") == 43
            )
            said["sink_curated"] = await _expect_denied(
                sink,
                f"INSERT INTO {z.curated}.line_velocity SELECT * FROM {z.curated}.line_velocity",
            )
            said["sink_staging"] = await _expect_denied(
                sink, f"UPDATE {z.staging}.games SET game_id = game_id"
            )
            said["sink_runs"] = await _expect_denied(
                sink, f"DELETE FROM {z.operational}.pipeline_runs"
            )
        finally:
            await sink.close()
        return said

    said = asyncio.run(check())
    assert all("permission denied" in m for m in said.values()), said
    assert (
        f"schema {z.staging}" in said["staging"] and f"schema {z.curated}" in said["sink_curated"]
    )
    assert "table line_velocity" in said["insert"] and "table pipeline_runs" in said["sink_runs"]


def test_migrating_twice_keeps_the_roles(secure: Settings) -> None:
    s = _per_test(secure)

    async def check() -> list[str]:
        await migrate(s)
        again = await migrate(s)
        conn = await asyncpg.connect(s.postgres.dsn)
        try:
            names = await conn.fetch(
                "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'oddsflow\\_%'"
                " ORDER BY rolname"
            )
        finally:
            await conn.close()
        assert again == []
        assert all(not r["rolcanlogin"] for r in names)
        return [r["rolname"] for r in names]

    assert asyncio.run(check()) == [
        "oddsflow_analyst",
        "oddsflow_sink",
        "oddsflow_sink_curated",
        "oddsflow_sink_operational",
        "oddsflow_sink_raw",
        "oddsflow_sink_staging",
    ]


# --- 3. Secrets never in logs or messages ---------------------------------------------------


def test_no_secret_appears_in_any_log_or_output(slice_run: SliceRun, secure: Settings) -> None:
    logs = [
        *slice_run.log_dir.glob("*.log"),
        *(secure.state_dir / "kafka" / "logs").glob("*"),
        secure.state_dir / "postgres" / "server.log",
    ]
    sizes = {p.name: p.stat().st_size for p in logs if p.is_file()}
    # The worker logs are really verbose (INFO from -v) and the broker logged the logins.
    assert sizes["staging.log"] > 0 and sizes["sink.log"] > 0 and sizes["server.log"] > 0
    assert sizes["publisher.log"] > 0
    staging_log = (slice_run.log_dir / "staging.log").read_text(errors="replace")
    assert "INFO" in staging_log or "[^" in staging_log
    for path in logs:
        if not path.is_file():
            continue
        text = path.read_bytes()
        for secret in ALL_SECRETS:
            assert secret.encode() not in text, f"{secret[:4]}... found in {path}"
    # Nor in the settings' own representations, which end up in tracebacks.
    for shown in (repr(secure), str(secure.model_dump()), secure.postgres.display_dsn):
        assert all(secret not in shown for secret in ALL_SECRETS)
