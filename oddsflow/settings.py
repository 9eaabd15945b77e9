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
from typing import Annotated

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


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


class Retention(BaseModel):
    """Days to keep each zone; -1 keeps forever."""

    raw_retention_days: int = 90
    staging_retention_days: int = 365
    curated_retention_days: int = -1

    @field_validator("*")
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
    zones: Zones = Zones()
    processing: Processing = Processing()
    retention: Retention = Retention()


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:19092"
    controller_port: int = 19093
    partitions: Annotated[int, Field(gt=0)] = 2
    replication_factor: Annotated[int, Field(gt=0)] = 1
    client_id: str = "oddsflow"
    topic_prefix: str = ""  # tests and side-by-side backfills use their own topic namespace
    kafka_version: str = "4.1.1"
    heap: str = "512m"

    @property
    def host(self) -> str:
        return self.bootstrap_servers.split(",")[0].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])


class PostgresSettings(BaseModel):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(gt=0, lt=65536)] = 15432
    database: str = "oddsflow"
    user: str = "oddsflow"
    password: str | None = None  # from ODDSFLOW_POSTGRES__PASSWORD only
    url: str | None = None  # DATABASE_URL: use that server instead of a local one

    @property
    def dsn(self) -> str:
        if self.url:
            return self.url
        auth = self.user if not self.password else f"{self.user}:{self.password}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{self.database}"


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
    sharp_moderate: float = 10
    sharp_strong: float = 15
    sharp_premium: float = 20
    sharp_moderate_min_bets: int = 50
    sharp_premium_min_bets: int = 100
    consensus_quote_horizon_minutes: Annotated[int, Field(gt=0)] = 60


class SimulatorSettings(BaseModel):
    seed: int = 7
    games: Annotated[int, Field(gt=0)] = 6
    books: Annotated[int, Field(gt=0, le=20)] = 5
    ticks: Annotated[int, Field(gt=0)] = 120
    tick_seconds: Annotated[int, Field(gt=0)] = 30


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
    state_dir: Path = PROJECT_ROOT / ".local"
    data_dir: Path = PROJECT_ROOT.parent / "shared" / "data"  # real captures, never copied in

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
            _DatabaseUrl(settings_cls),
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )


class _DatabaseUrl(PydanticBaseSettingsSource):
    """The conventional DATABASE_URL names an existing server to use instead of a local one."""

    def get_field_value(self, field, field_name):  # type: ignore[no-untyped-def]
        return None, field_name, False

    def __call__(self) -> dict[str, object]:
        url = os.environ.get("DATABASE_URL")
        return {"postgres": {"url": url}} if url else {}


class SettingsError(SystemExit):
    """Start-up refusal: names each bad key and why, never a stack trace."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {key}: {err['msg']} (got {err.get('input')!r})")
        raise SettingsError("oddsflow: bad configuration\n" + "\n".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
