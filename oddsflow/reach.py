"""Can the broker and the database be reached? Asked once before a short command starts.

Without it, a command whose broker does not answer fails after its first client's own timeout —
10 s for one, a minute for another, each with its own message — or, chaining several calls, after
the sum. Asked first, every short command fails within :data:`TIMEOUT` seconds with the same
sentence (:class:`oddsflow.errors.CommandError`, exit 1). Long-running commands do not ask: they
wait for the services (``core.kafka_config``).
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import asyncpg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from core.kafka_config import (
    KAFKA_LOG,
    client_config,
    last_unreachable,
    note_unreachable,
    refused_login,
)
from core.settings import Settings
from oddsflow.errors import CommandError, kafka_reason

TIMEOUT = 5.0
#: Connections refused this long end the wait: nothing listens at the address.
REFUSED_FOR = 2.0
HINT = "is it running? (`oddsflow services status`)"


def require_kafka(settings: Settings, timeout: float = TIMEOUT) -> None:
    """The broker answers a cluster description within ``timeout`` seconds; refused connections
    for :data:`REFUSED_FOR` seconds end the wait sooner (nothing listens there)."""
    where = f"Kafka at {settings.kafka.bootstrap_servers}"
    admin = AdminClient(client_config(settings))
    started = time.monotonic()
    future = admin.describe_cluster(request_timeout=timeout)
    refused_at: float | None = None
    while True:
        try:
            cluster = future.result(timeout=0.25)
            break
        except TimeoutError:
            pass
        except KafkaException as exc:
            admin.poll(0)  # serves the error callbacks: librdkafka's own words for the failure
            login = refused_login()
            if login:
                raise CommandError(f"{login} ({where}): check the SASL user and password") from None
            why = last_unreachable() or kafka_reason(exc)[0]
            raise CommandError(f"{where} does not answer ({why}); {HINT}") from None
        admin.poll(0)
        login = refused_login()
        if login:  # it answers, and says no: the credentials, not the network
            raise CommandError(f"{login} ({where}): check the SASL user and password")
        now = time.monotonic()
        why = last_unreachable()
        if why and "refused" in why:
            refused_at = refused_at or now
        if now - started > timeout or (refused_at and now - refused_at > REFUSED_FOR):
            raise CommandError(
                f"{where} does not answer within {now - started:.0f}s ({why or 'no answer'}); "
                + HINT
            )
    if not cluster.nodes:
        raise CommandError(f"{where} answered with no brokers")


async def _connect(settings: Settings, timeout: float) -> None:
    conn = await asyncpg.connect(settings.postgres.dsn, timeout=timeout)
    await conn.close()


def require_postgres(settings: Settings, timeout: float = TIMEOUT) -> None:
    """The database accepts a connection within ``timeout`` seconds."""
    where = f"Postgres at {settings.postgres.display_dsn}"
    try:
        asyncio.run(_connect(settings, timeout))
    except TimeoutError:
        raise CommandError(f"{where} does not answer within {timeout:g}s") from None
    except (OSError, asyncpg.CannotConnectNowError) as exc:
        raise CommandError(f"{where} does not answer ({exc}); {HINT}") from None
    except asyncpg.InvalidAuthorizationSpecificationError as exc:
        raise CommandError(f"{where} refused the login: {exc}") from None
    except asyncpg.InvalidCatalogNameError as exc:
        raise CommandError(f"{where}: {exc}") from None


def require(settings: Settings, services: tuple[str, ...]) -> None:
    """Each of ``kafka`` and ``postgres`` named in ``services``, broker first."""
    if "kafka" in services:
        require_kafka(settings)
    if "postgres" in services:
        require_postgres(settings)


def wait_for_kafka(settings: Settings, probe_timeout: float = TIMEOUT) -> bool:
    """Block until the broker answers, saying so once ("waiting for Kafka at …", INFO on
    ``oddsflow.kafka``); False if SIGTERM or SIGINT came first. For commands that run until
    stopped: they start once the broker is there instead of failing or spinning."""
    stopped = threading.Event()

    def stop(_signum: int, _frame: object) -> None:
        stopped.set()

    main = threading.current_thread() is threading.main_thread()  # signals: main thread only
    sigs = (signal.SIGTERM, signal.SIGINT) if main else ()
    old = {sig: signal.signal(sig, stop) for sig in sigs}
    servers = settings.kafka.bootstrap_servers
    waited = False
    try:
        while not stopped.is_set():
            try:
                require_kafka(settings, probe_timeout)
            except CommandError:
                waited = True
                note_unreachable(servers, last_unreachable())
                stopped.wait(1.0)
                continue
            if waited:
                KAFKA_LOG.info("Kafka at %s answers", servers)
            return True
        return False
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
