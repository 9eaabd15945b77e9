"""One typed settings object, read from config.toml and the environment.

Precedence, highest first: environment (``ODDSFLOW_<SECTION>__<KEY>``), then
``config.toml`` (or the file named by ``ODDSFLOW_CONFIG``), then the defaults here.
A bad value fails at start-up with the key and the reason (see :func:`load_settings`).
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode, urlsplit

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: A config key whose name matches this holds a secret: never read from a config file, never
#: echoed in an error message. ``*_file`` keys (a path to the secret) are not secrets.
_SECRET_KEY = re.compile(r"password|passwd|secret|api_?key|token", re.IGNORECASE)
REDACTED = "<redacted>"


def is_secret_key(key: str) -> bool:
    """Whether a config key names a secret (and so must come from the environment or a file)."""
    return bool(_SECRET_KEY.search(key)) and not key.lower().endswith("_file")


def _read_secret_file(path: Path, key: str) -> SecretStr:
    """The secret in ``path`` (one trailing newline dropped); the message never shows content."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read the {key} file {str(path)!r}: {exc.strerror}") from None
    text = text[:-1] if text.endswith("\n") else text
    if not text:
        raise ValueError(f"the {key} file {str(path)!r} is empty")
    return SecretStr(text)


class PipelineMode(StrEnum):
    RAW_ONLY = "raw_only"
    STAGING_ONLY = "staging_only"
    FULL = "full"


class Zones(BaseModel):
    """Postgres schema of each zone (roadmap 1.1)."""

    raw: str = "raw_data"
    staging: str = "core_betting"
    curated: str = "analytics"
    operational: str = "operational"

    @field_validator("raw", "staging", "curated", "operational")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(
                f"{value!r} is not a valid Postgres schema name "
                "(lower-case letters, digits and _, not starting with a digit)"
            )
        return value


class Processing(BaseModel):
    auto_promotion: bool = True
    parallel_processing: bool = True
    quality_gates: bool = True
    #: A raw payload larger than this is dead-lettered unparsed. Staging parses what the raw
    #: topics accept (8 MB; real responses with many books reach megabytes); the dead letter of a
    #: larger record points at it instead of copying it, so it fits the broker whatever the size.
    max_payload_bytes: Annotated[int, Field(gt=0, le=64 * 1024 * 1024)] = 8 * 1024 * 1024


class Retention(BaseModel):
    """Days to keep each zone; -1 keeps forever."""

    raw_retention_days: int = 90
    staging_retention_days: int = 365
    curated_retention_days: int = -1
    purge_interval_minutes: Annotated[int, Field(gt=0)] = 60  # the sink worker's purge
    #: ``raw.odds.file`` and ``raw.odds.simulator`` are kept by size, not time (bytes per
    #: partition; -1: forever). Their records carry the time of the history they replay as Kafka
    #: timestamp (a 2016 season says 2016, a simulation may start months ago), and time retention
    #: compares record timestamps with now: they would be deleted at the broker's next retention
    #: check, a minute after they were published.
    history_retention_bytes: Annotated[int, Field(ge=-1)] = 2 * 1024**3

    @field_validator("raw_retention_days", "staging_retention_days", "curated_retention_days")
    @classmethod
    def _not_negative(cls, value: int) -> int:
        if value < -1 or value == 0:
            raise ValueError("must be a positive number of days, or -1 to keep forever")
        return value


class PipelineSettings(BaseModel):
    enabled: bool = True
    mode: PipelineMode = PipelineMode.FULL
    batch_size: Annotated[int, Field(gt=0)] = 1000
    max_parallel_jobs: Annotated[int, Field(gt=0)] = 4
    quality_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.8
    #: "baseline" runs the naive per-event staging agents, for the benchmark's ratio.
    staging_agent: Literal["batched", "baseline"] = "batched"
    #: How often the staging worker publishes the current minute's quality report per source
    #: (operational.quality, one row per source and minute, updated until the minute ends).
    quality_report_seconds: Annotated[float, Field(gt=0)] = 10.0
    zones: Zones = Zones()
    processing: Processing = Processing()
    retention: Retention = Retention()


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_SSL = "SASL_SSL"


class KafkaSettings(BaseModel):
    """Where the broker is and how every client (confluent-kafka and faust) authenticates."""

    bootstrap_servers: str = "127.0.0.1:19092"
    controller_port: int = 19093
    #: PLAINTEXT for a trusted local broker; SSL (TLS) or SASL_SSL (TLS + SCRAM) on a shared
    #: network.
    security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"
    sasl_username: str | None = None
    #: From ODDSFLOW_KAFKA__SASL_PASSWORD or the file ODDSFLOW_KAFKA__SASL_PASSWORD_FILE names.
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    #: CA bundle that signed the broker's certificate; default: the local CA (state_dir/tls/ca.pem)
    #: when it exists, else the system's trust store.
    ca_file: Path | None = None
    #: Local broker only, when security_protocol is not PLAINTEXT: a PLAINTEXT listener bound to
    #: 127.0.0.1 for the broker's own traffic and for creating SCRAM users (default
    #: controller_port + 1).
    internal_port: Annotated[int, Field(gt=0, lt=65536)] | None = None
    partitions: Annotated[int, Field(gt=0)] = 2
    replication_factor: Annotated[int, Field(gt=0)] = 1
    client_id: str = "oddsflow"
    topic_prefix: str = ""  # tests and side-by-side backfills use their own topic namespace
    kafka_version: str = "4.1.1"
    heap: str = "512m"

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        """``host:port[,host:port…]``: a typo fails at start-up, not as a client that never
        connects."""
        for entry in value.split(","):
            host, _, port = entry.strip().rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{entry.strip()!r} is not host:port (e.g. 127.0.0.1:19092)")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> KafkaSettings:
        if self.sasl_password is None and self.sasl_password_file is not None:
            self.sasl_password = _read_secret_file(self.sasl_password_file, "kafka.sasl_password")
        if self.security_protocol is SecurityProtocol.SASL_SSL and (
            not self.sasl_username or self.sasl_password is None
        ):
            raise ValueError(
                "security_protocol SASL_SSL needs kafka.sasl_username and a password from "
                "ODDSFLOW_KAFKA__SASL_PASSWORD or ODDSFLOW_KAFKA__SASL_PASSWORD_FILE"
            )
        return self

    @property
    def password(self) -> str | None:
        """The SCRAM password in clear, for the client libraries only (never log it)."""
        return self.sasl_password.get_secret_value() if self.sasl_password else None

    @property
    def host(self) -> str:
        return self.bootstrap_servers.split(",")[0].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])


SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


class PostgresSettings(BaseModel):
    """Where the database is; TLS and the password travel in the DSN every client uses."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(gt=0, lt=65536)] = 15432
    database: str = "oddsflow"
    user: str = "oddsflow"
    #: From ODDSFLOW_POSTGRES__PASSWORD or the file ODDSFLOW_POSTGRES__PASSWORD_FILE names.
    password: SecretStr | None = None
    password_file: Path | None = None
    url: str | None = None  # DATABASE_URL: use that server instead of a local one
    #: libpq's sslmode; verify-full checks the server certificate against ``sslrootcert`` and its
    #: name against ``host``. None leaves the client's default (prefer).
    sslmode: SslMode | None = None
    sslrootcert: Path | None = None

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        """DATABASE_URL must be a URL the driver takes (asyncpg reads no key=value DSNs)."""
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError as exc:
            raise ValueError(f"not a postgresql:// URL ({exc})") from None
        if parts.scheme not in ("postgresql", "postgres") or not (parts.hostname or parts.query):
            raise ValueError("not a postgresql://user@host:port/database URL")
        return value

    @model_validator(mode="after")
    def _password(self) -> PostgresSettings:
        if self.password is None and self.password_file is not None:
            self.password = _read_secret_file(self.password_file, "postgres.password")
        return self

    def _url(self, password: str | None) -> str:
        auth = quote(self.user, safe="")
        if password:
            auth += ":" + (password if password == REDACTED else quote(password, safe=""))
        url = f"postgresql://{auth}@{self.host}:{self.port}/{quote(self.database, safe='')}"
        query: dict[str, str] = {}
        if self.sslmode:
            query["sslmode"] = self.sslmode
        if self.sslrootcert:
            query["sslrootcert"] = str(self.sslrootcert)
        return url + ("?" + urlencode(query, safe="/") if query else "")

    @property
    def dsn(self) -> str:
        """The connection string, password included: pass it to a driver, never print it."""
        if self.url:
            return self.url
        return self._url(self.password.get_secret_value() if self.password else None)

    @property
    def display_dsn(self) -> str:
        """The DSN with any password replaced, for messages and logs."""
        if self.url:
            return re.sub(r"(://[^:/@]+:)[^@]*@", rf"\1{REDACTED}@", self.url)
        return self._url(REDACTED if self.password else None)


class FeatureSettings(BaseModel):
    """Thresholds and windows of the curated features (DESIGN.md, domain definitions)."""

    velocity_windows_minutes: list[Annotated[int, Field(gt=0)]] = [5, 15, 60]
    allowed_lateness_minutes: Annotated[int, Field(ge=0)] = 10
    steam_window_minutes: Annotated[int, Field(gt=0)] = 5
    steam_min_books: Annotated[int, Field(gt=1)] = 3
    steam_threshold_cents: Annotated[float, Field(gt=0)] = 10
    steam_threshold_points: Annotated[float, Field(gt=0)] = 0.5
    rlm_lookback_minutes: Annotated[int, Field(gt=0)] = 60
    rlm_tiers: list[float] = [55, 65, 75]
    # Smallest net move over the lookback that counts as a line move for RLM: below it, drift
    # and rounding (1-3 cents) would make the signal fire on noise. Same scale as steam's.
    rlm_min_move_cents: Annotated[float, Field(ge=0)] = 10
    rlm_min_move_points: Annotated[float, Field(ge=0)] = 0.5
    sharp_moderate: float = 10
    sharp_strong: float = 15
    sharp_premium: float = 20
    sharp_moderate_min_bets: int = 50
    sharp_premium_min_bets: int = 100
    consensus_quote_horizon_minutes: Annotated[int, Field(gt=0)] = 60
    # After this long without input, a partition releases what it holds (end of a backfill).
    idle_flush_seconds: Annotated[float, Field(gt=0)] = 30.0
    #: Backfilling a new feature version beside the live one: the feature worker still reads the
    #: staging topics but writes ``output_prefix + <curated topic>``, in its own consumer group
    #: (so it starts from the beginning). Empty: the live topics. See README, "Backfill".
    output_prefix: str = ""


class SimulatorSettings(BaseModel):
    seed: int = 7
    games: Annotated[int, Field(gt=0)] = 6
    books: Annotated[int, Field(gt=0, le=20)] = 5
    ticks: Annotated[int, Field(gt=0)] = 120
    tick_seconds: Annotated[int, Field(gt=0)] = 30


#: The largest body a collector may store: a record must fit in one fetch response (librdkafka
#: and aiokafka ask for 50 MiB) and one produce request (the broker's socket.request.max.bytes,
#: 100 MiB), dead-letter and envelope around it included.
MAX_PAYLOAD_CEILING = 32 * 1024 * 1024


class CollectorSettings(BaseModel):
    """What collectors accept, and the live sources' credentials (from the environment or a
    file, never config.toml)."""

    #: Largest response body (or history row) stored, in bytes: raw topics take records this
    #: large plus the envelope (``max.message.bytes``), producers send them lz4-compressed, and
    #: every consumer fetches them. A larger body is refused and recorded on ``dlq.collect``
    #: without its bytes. Real MLB slates with every book and market reach megabytes.
    max_payload_bytes: Annotated[int, Field(ge=1024 * 1024, le=MAX_PAYLOAD_CEILING)] = (
        8 * 1024 * 1024
    )
    #: Deepest JSON nesting a poller stores (real feeds nest under 10 levels). Deeper bodies are
    #: refused (``json_too_deep``) before any recursive parser sees them.
    max_json_depth: Annotated[int, Field(ge=8, le=512)] = 64

    #: The Odds API key: ODDS_API_KEY (the conventional name), ODDSFLOW_COLLECTORS__ODDS_API_KEY,
    #: or the file ODDSFLOW_COLLECTORS__ODDS_API_KEY_FILE names.
    odds_api_key: SecretStr | None = None
    odds_api_key_file: Path | None = None

    @model_validator(mode="after")
    def _key_from_file(self) -> CollectorSettings:
        if self.odds_api_key is None and self.odds_api_key_file is not None:
            self.odds_api_key = _read_secret_file(self.odds_api_key_file, "collectors.odds_api_key")
        return self


class WorkerSettings(BaseModel):
    """How an always-on worker is operated (``oddsflow worker``)."""

    health_port: Annotated[int, Field(ge=0, lt=65536)] = 0  # /live and /ready; 0 = off
    log_format: Literal["text", "json"] = "text"
    stop_timeout_seconds: Annotated[float, Field(gt=0)] = 8.0  # SIGTERM to exit, at most
    #: How long the broker may hold a stream worker's fetch while no data arrives. faust fixes
    #: 1,500 ms; a fetch in flight for idle partitions then delays records that arrive on the
    #: others (the second hop of staging, the features input) by up to that long.
    fetch_max_wait_ms: Annotated[int, Field(ge=0, le=1500)] = 100

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


class Settings(BaseSettings):
    """Everything oddsflow reads from outside its code."""

    model_config = SettingsConfigDict(
        env_prefix="ODDSFLOW_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    pipeline: PipelineSettings = PipelineSettings()
    kafka: KafkaSettings = KafkaSettings()
    postgres: PostgresSettings = PostgresSettings()
    features: FeatureSettings = FeatureSettings()
    simulator: SimulatorSettings = SimulatorSettings()
    worker: WorkerSettings = WorkerSettings()
    collectors: CollectorSettings = CollectorSettings()
    state_dir: Path = PROJECT_ROOT / ".local"
    #: real captures for the benchmark's file-replay stage (ODDSFLOW_DATA_DIR); the repository's
    #: own copies by default, so nothing outside the checkout is read unless named
    data_dir: Path = PROJECT_ROOT / "tests" / "fixtures"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("ODDSFLOW_CONFIG", PROJECT_ROOT / "config.toml"))
        return (
            init_settings,
            env_settings,
            _ConventionalEnv(settings_cls),
            _TomlWithoutSecrets(settings_cls, toml_file=toml_path),
        )


def _secret_paths(data: object, path: tuple[str, ...] = ()) -> list[str]:
    """Dotted keys under ``data`` that name secrets."""
    if not isinstance(data, dict):
        return []
    found = []
    for key, value in data.items():
        here = (*path, str(key))
        if is_secret_key(str(key)) and value is not None:
            found.append(".".join(here))
        found.extend(_secret_paths(value, here))
    return found


class _TomlWithoutSecrets(TomlConfigSettingsSource):
    """config.toml, refused outright if it holds a secret: those are committed and shared."""

    def __init__(self, settings_cls: type[BaseSettings], toml_file: Path) -> None:
        import tomllib

        self._path = toml_file
        try:
            super().__init__(settings_cls, toml_file=toml_file)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"oddsflow: {toml_file} is not valid TOML: {exc}") from None

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        secrets = _secret_paths(data)
        if secrets:
            hints = ", ".join(
                f"{key} (set ODDSFLOW_{key.upper().replace('.', '__')} or "
                f"ODDSFLOW_{key.upper().replace('.', '__')}_FILE instead)"
                for key in secrets
            )
            raise SettingsError(
                f"oddsflow: {self._path} holds a secret: {hints}. Secrets never go in a config "
                "file; take the value out of it and put it in the environment or a file."
            )
        return data


class _ConventionalEnv(PydanticBaseSettingsSource):
    """Conventional variable names, below the ODDSFLOW_ ones: DATABASE_URL names an existing
    server to use instead of a local one; ODDS_API_KEY is The Odds API's own name for its key."""

    NAMES = {"DATABASE_URL": ("postgres", "url"), "ODDS_API_KEY": ("collectors", "odds_api_key")}

    def get_field_value(self, field, field_name):  # type: ignore[no-untyped-def]
        return None, field_name, False

    def __call__(self) -> dict[str, object]:
        found: dict[str, dict[str, str]] = {}
        for name, (section, key) in self.NAMES.items():
            value = os.environ.get(name)
            if value:
                found.setdefault(section, {})[key] = value
        return dict(found)


class SettingsError(SystemExit):
    """Start-up refusal: names each bad key and why, never a stack trace."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            got = REDACTED if is_secret_key(key) else _redact(err.get("input"))
            if isinstance(got, str) and "://" in got:  # a URL's password stays out of messages
                got = re.sub(r"(://[^:/@]+:)[^@]*@", rf"\1{REDACTED}@", got)
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  {key}: {msg} (got {got!r})")
        raise SettingsError("oddsflow: bad configuration\n" + "\n".join(lines)) from None


def _redact(value: object) -> object:
    """``value`` with every secret-named key's value replaced: error messages echo inputs."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if is_secret_key(str(k)) and v is not None else _redact(v))
            for k, v in value.items()
        }
    if isinstance(value, BaseModel):
        return _redact(value.model_dump())
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
