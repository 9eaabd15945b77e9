"""PostgreSQL from the system's server binaries, or the server DATABASE_URL names.

initdb into ``.local/postgres`` and pg_ctl on the configured port. Postgres refuses to run as
root, so when we are root the server runs as the unprivileged ``postgres`` user (runuser).

With ``postgres.sslmode`` require/verify-ca/verify-full the local server gets a certificate from
the local CA (``services/tls.py``, ``<state_dir>/tls/ca.pem`` is the ``sslrootcert`` to verify it
with) and pg_hba accepts TCP connections over TLS only. With ``postgres.password`` set when the
cluster is created, TCP connections authenticate with SCRAM instead of being trusted.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
from pathlib import Path

from core.settings import Settings
from oddsflow.services.prereq import PrerequisiteError, require_free_port
from oddsflow.services.process import tail

RUN_AS = "postgres"


def bindir() -> Path:
    """Newest server bindir: Debian keeps them in /usr/lib/postgresql/<v>/bin, off PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PrerequisiteError(
        "oddsflow: the PostgreSQL server binaries (initdb, pg_ctl) are not installed; "
        "install them (apt-get install postgresql) or point DATABASE_URL at a running server"
    )


def _as_root() -> bool:
    return os.geteuid() == 0


def _root(settings: Settings) -> Path:
    return settings.state_dir / "postgres"


def _run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    if _as_root():
        cmd = ["runuser", "-u", RUN_AS, "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        said = (proc.stderr or proc.stdout).strip()[-500:]
        raise PrerequisiteError(f"oddsflow: `{' '.join(cmd[-3:])}` failed: {said}")
    return proc


def _prepare_dir(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    if _as_root():
        try:
            import pwd

            pw = pwd.getpwnam(RUN_AS)
        except KeyError:
            raise PrerequisiteError(
                f"oddsflow: running as root, but there is no `{RUN_AS}` user to run Postgres "
                "as; install the postgresql package or run oddsflow as a normal user"
            ) from None
        os.chown(root, pw.pw_uid, pw.pw_gid)
        _traversable(root)


def _traversable(root: Path) -> None:
    """Let Postgres reach its data dir through every parent folder (as root: o+x on each).

    Done again before pg_ctl runs: something else may have tightened a parent meanwhile
    (pytest resets its temporary base folder to 0700 when another session starts).
    """
    if not _as_root():
        return
    for parent in root.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)
        if parent == Path("/"):
            break


def _tls_wanted(settings: Settings) -> bool:
    return settings.postgres.sslmode in ("require", "verify-ca", "verify-full")


def _owned_by_server(path: Path, mode: int) -> None:
    os.chmod(path, mode)
    if _as_root():
        import pwd

        pw = pwd.getpwnam(RUN_AS)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def _configure_tls(settings: Settings, data: Path) -> None:
    """Server certificate in the data folder, ssl on, and only TLS over TCP (pg_hba)."""
    from oddsflow.services import tls

    hosts = tuple(dict.fromkeys((settings.postgres.host, *tls.HOSTS)))
    server = tls.ensure_server_cert(settings.state_dir, "postgres", hosts)
    for src, dst in ((server.cert, data / "server.crt"), (server.key, data / "server.key")):
        dst.write_bytes(src.read_bytes())
        _owned_by_server(dst, 0o600)
    conf = data / "postgresql.conf"
    if "# oddsflow tls" not in conf.read_text():
        with conf.open("a") as f:
            f.write(
                "\n# oddsflow tls\nssl = on\nssl_cert_file = 'server.crt'\n"
                "ssl_key_file = 'server.key'\nssl_min_protocol_version = 'TLSv1.2'\n"
            )
    method = "scram-sha-256" if settings.postgres.password else "trust"
    hba = data / "pg_hba.conf"
    hba.write_text(
        "# written by oddsflow: TCP over TLS only\n"
        "local     all all                trust\n"
        f"hostssl   all all 127.0.0.1/32   {method}\n"
        f"hostssl   all all ::1/128        {method}\n"
        "hostnossl all all all            reject\n"
    )
    _owned_by_server(hba, 0o600)


def is_external(settings: Settings) -> bool:
    return settings.postgres.url is not None


async def _ping(dsn: str, database: str | None = None) -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(dsn, timeout=3, database=database)
    except Exception:
        return False
    await conn.close()
    return True


def is_ready(settings: Settings) -> bool:
    return asyncio.run(_ping(settings.postgres.dsn))


def start(settings: Settings) -> str:
    pg = settings.postgres
    if is_external(settings):
        if not is_ready(settings):
            raise PrerequisiteError(
                "oddsflow: DATABASE_URL is set but that server does not answer; start it or "
                "unset DATABASE_URL to use a local one"
            )
        return "Postgres (external, DATABASE_URL) ready"
    root = _root(settings)
    data = root / "data"
    bins = bindir()
    _prepare_dir(root)
    if not (data / "PG_VERSION").exists():
        auth = ["--auth=trust"]
        pwfile = root / ".initdb-password"
        if pg.password is not None:
            pwfile.touch(mode=0o600)
            pwfile.write_text(pg.password.get_secret_value() + "\n")
            _owned_by_server(pwfile, 0o600)
            auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        try:
            _run(
                [
                    str(bins / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    pg.user,
                    *auth,
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "-N",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf = data / "postgresql.conf"
        extra = (
            f"\nport = {pg.port}\nlisten_addresses = '{pg.host}'\n"
            f"unix_socket_directories = '{root}'\nshared_buffers = 128MB\n"
            "max_connections = 60\nlogging_collector = off\nwal_level = replica\n"
            "max_wal_size = 1GB\ncheckpoint_timeout = 5min\n"
        )
        _run(["sh", "-c", f"cat >> {conf} <<'EOF'{extra}EOF"])
    status_proc = _run([str(bins / "pg_ctl"), "-D", str(data), "status"], check=False)
    if status_proc.returncode != 0:
        if _tls_wanted(settings):
            _configure_tls(settings, data)
        require_free_port(pg.host, pg.port, "Postgres", "ODDSFLOW_POSTGRES__PORT")
        proc = _run(
            [
                str(bins / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=False,
        )
        if proc.returncode != 0:
            raise PrerequisiteError(
                "oddsflow: Postgres did not start; its log says:\n" + tail(root / "server.log")
            )
    asyncio.run(_ensure_database(settings))
    how = f", TLS {pg.sslmode}" if _tls_wanted(settings) else ""
    return f"Postgres ready at {pg.host}:{pg.port}/{pg.database} (data in {data}{how})"


async def _ensure_database(settings: Settings) -> None:
    import asyncpg

    pg = settings.postgres
    conn = await asyncpg.connect(pg.dsn, database="postgres", timeout=10)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", pg.database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{pg.database}"')
    finally:
        await conn.close()


def stop(settings: Settings) -> str:
    if is_external(settings):
        return "Postgres is external (DATABASE_URL): left running"
    data = _root(settings) / "data"
    if not (data / "PG_VERSION").exists():
        return "Postgres not running"
    bins = bindir()
    _traversable(data)
    if _run([str(bins / "pg_ctl"), "-D", str(data), "status"], check=False).returncode != 0:
        return "Postgres not running"
    _run([str(bins / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"])
    return "Postgres stopped"


def status(settings: Settings) -> tuple[bool, str]:
    pg = settings.postgres
    where = "DATABASE_URL" if is_external(settings) else f"{pg.host}:{pg.port}/{pg.database}"
    if is_ready(settings):
        kind = "external" if is_external(settings) else f"data in {_root(settings) / 'data'}"
        return True, f"postgres  up    {where}  ({kind})"
    return False, f"postgres  down  {where}"
