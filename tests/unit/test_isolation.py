"""A child process gets exactly the parent's settings through the environment."""

from __future__ import annotations

import json
import subprocess
import sys

from core.isolation import child_env, isolated_settings
from core.settings import load_settings


def test_isolated_settings_have_their_own_topics_and_schemas() -> None:
    a, b = isolated_settings(load_settings()), isolated_settings(load_settings())
    assert a.kafka.topic_prefix != b.kafka.topic_prefix
    assert a.pipeline.zones.raw.endswith("_raw") and a.pipeline.zones.raw != b.pipeline.zones.raw


def test_a_child_process_loads_the_same_settings() -> None:
    s = isolated_settings(
        load_settings(features={"idle_flush_seconds": 3, "velocity_windows_minutes": [5, 30]})
    )
    out = subprocess.run(
        [sys.executable, "-c",
         "from core.settings import load_settings; print(load_settings().model_dump_json())"],
        env=child_env(s), capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(out.stdout) == json.loads(s.model_dump_json())


def test_secrets_reach_the_child_unmasked() -> None:
    s = load_settings(postgres={"password": "s3cr3t-pw"})
    assert child_env(s, base={})["ODDSFLOW_POSTGRES__PASSWORD"] == "s3cr3t-pw"


def test_a_local_database_is_not_overridden_by_the_parents_url() -> None:
    """The chaos runner's private Postgres: the shell's DATABASE_URL (the shared server) once
    sent the tormented pipeline's sink into the reference's tables."""
    s = load_settings(postgres={"url": None, "port": 25432})
    env = child_env(s, base={"DATABASE_URL": "postgresql://other@127.0.0.1:15432/oddsflow"})
    assert "DATABASE_URL" not in env
    assert env["ODDSFLOW_POSTGRES__PORT"] == "25432"
    shared = load_settings(postgres={"url": "postgresql://oddsflow@127.0.0.1:15432/oddsflow"})
    assert child_env(shared, base={})["DATABASE_URL"] == shared.postgres.url
