"""Every failure of a command as one line and an exit status: 2 usage, 1 runtime.

The command line (:func:`oddsflow.cli.main`) is the only place that turns exceptions into text,
so a new failure mode anywhere below it still ends as one line on stderr, never a traceback
(``-v`` adds the traceback for a developer). :func:`explain` knows the failures a user can cause
or meet — a broker or database that does not answer, a missing file, a port in use — and says
what to do about them; anything else is named by its type and message.
"""

from __future__ import annotations

import errno
import re
from typing import TYPE_CHECKING

import asyncpg
from confluent_kafka import KafkaError, KafkaException

if TYPE_CHECKING:
    from core.settings import Settings

EX_OK = 0
EX_RUNTIME = 1
EX_USAGE = 2
EX_INTERRUPTED = 130
EX_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a reader that left (`| head`)

#: librdkafka's codes for "the broker did not answer": the message says so, not the code.
KAFKA_UNREACHABLE = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError._TIMED_OUT,
        KafkaError._MSG_TIMED_OUT,
    }
)


class UsageError(Exception):
    """The arguments or the configuration are wrong: nothing was attempted (exit 2)."""


class CommandError(Exception):
    """A runtime failure the command already put into words (exit 1)."""


def one_line(text: str, limit: int = 600) -> str:
    """Collapse whitespace and newlines; cut long text at a word boundary with an ellipsis."""
    flat = re.sub(r"\s+", " ", text).strip()
    return shorten(flat, limit)


def shorten(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` characters at a word boundary, ending in "…".

    A single word longer than ``width`` (a token, a URL) is cut inside it: there is no boundary.
    """
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    cut = text[: width - 1]
    space = cut.rfind(" ")
    if space >= width // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:(") + "…"


def kafka_reason(exc: KafkaException) -> tuple[str, bool]:
    """(librdkafka's text, whether it means the broker did not answer)."""
    err = exc.args[0] if exc.args else None
    if isinstance(err, KafkaError):
        return err.str(), err.code() in KAFKA_UNREACHABLE
    return str(exc), False


def _pg_where(settings: Settings | None) -> str:
    return f"Postgres at {settings.postgres.display_dsn}" if settings else "Postgres"


def _kafka_where(settings: Settings | None) -> str:
    return f"Kafka at {settings.kafka.bootstrap_servers}" if settings else "Kafka"


def explain(exc: BaseException, settings: Settings | None = None) -> tuple[str, int]:
    """One line for ``exc`` and the exit status it means."""
    from core.offsets import KafkaUnavailable
    from core.settings import SettingsError

    if isinstance(exc, UsageError):
        return str(exc), EX_USAGE
    if isinstance(exc, SettingsError):
        text = str(exc.code).replace("configuration\n  ", "configuration: ", 1)
        return one_line(text.replace("\n  ", "; ")), EX_USAGE
    if isinstance(exc, CommandError):
        return str(exc), EX_RUNTIME
    if isinstance(exc, KafkaUnavailable):
        return f"{_kafka_where(settings)}: {exc}", EX_RUNTIME
    if isinstance(exc, KafkaException):
        from core.kafka_config import last_unreachable

        reason, unreachable = kafka_reason(exc)
        if unreachable:
            seen = last_unreachable()
            why = f"{reason}; {seen}" if seen and seen not in reason else reason
            return f"{_kafka_where(settings)} does not answer ({why})", EX_RUNTIME
        return f"{_kafka_where(settings)} refused: {reason}", EX_RUNTIME
    if isinstance(exc, asyncpg.UndefinedTableError | asyncpg.InvalidSchemaNameError):
        return (
            f"the database has no oddsflow tables yet ({exc}); run `oddsflow db migrate`"
            " (or `make demo`)",
            EX_RUNTIME,
        )
    if isinstance(
        exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
    ):
        return f"{_pg_where(settings)} refused the login: {exc}", EX_RUNTIME
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return f"{_pg_where(settings)}: {exc}", EX_RUNTIME
    if isinstance(exc, asyncpg.CannotConnectNowError | asyncpg.TooManyConnectionsError):
        return f"{_pg_where(settings)} does not accept connections now ({exc})", EX_RUNTIME
    if isinstance(exc, asyncpg.PostgresError):
        return f"{_pg_where(settings)}: {type(exc).__name__}: {exc}", EX_RUNTIME
    if isinstance(exc, asyncpg.InterfaceError | asyncpg.ClientConfigurationError):
        return f"{_pg_where(settings)}: {exc}", EX_RUNTIME
    if isinstance(exc, OSError):
        return _os_error(exc, settings), EX_RUNTIME
    if isinstance(exc, TimeoutError):
        return f"timed out{f' ({exc})' if str(exc) else ''}", EX_RUNTIME
    if isinstance(exc, ValueError | TypeError | KeyError | LookupError | RuntimeError):
        text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        return f"{type(exc).__name__}: {text}", EX_RUNTIME
    return f"{type(exc).__name__}: {exc}", EX_RUNTIME


def _os_error(exc: OSError, settings: Settings | None) -> str:
    """Files by their path, sockets by their address: the two ways an OSError reaches us."""
    if exc.filename is not None:
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen: the address is already in use ({exc.strerror})"
    text = str(exc) or type(exc).__name__
    port = _pg_port(settings) if settings is not None else None
    if port and re.search(rf", {port}[,)]", text):  # asyncpg: "Connect call failed ('h', 5432)"
        return f"{_pg_where(settings)} does not answer ({text}); `oddsflow services status`"
    return text


def _pg_port(settings: Settings) -> int | None:
    from urllib.parse import urlsplit

    pg = settings.postgres
    if pg.url is None:
        return pg.port
    try:
        return urlsplit(pg.url).port or 5432
    except ValueError:
        return None
