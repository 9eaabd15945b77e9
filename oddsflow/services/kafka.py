"""A real Apache Kafka broker (KRaft, one combined node) assembled from Maven Central.

No Docker and no internet here: ``mvn dependency:copy-dependencies`` fetches the broker jars
once into ``.local/kafka/<version>/libs`` (the second ``up`` downloads nothing), storage is
formatted once, and ``java -cp libs/* kafka.Kafka`` runs detached with a small heap.
Ready means an AdminClient call succeeds, not an open port.

With ``kafka.security_protocol`` SSL or SASL_SSL the client listener speaks TLS with a
certificate from the local CA (``services/tls.py``) and, for SASL_SSL, authenticates with SCRAM;
the user ``kafka.sasl_username`` is created (or its password reset) at every start through a
PLAINTEXT listener bound to 127.0.0.1 (``kafka.internal_port``), which also carries the broker's
own traffic.
"""

from __future__ import annotations

import base64
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from core.settings import SecurityProtocol, Settings
from oddsflow.services.prereq import PrerequisiteError, require_binary, require_free_port
from oddsflow.services.process import read_pid, stop_pid, tail

LOG4J_VERSION = "2.24.3"

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>oddsflow</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId>
      <version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

LOG4J2 = """status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {log_dir}/server.log
appender.file.filePattern = {log_dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 2
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = warn
logger.state.name = state.change.logger
logger.state.level = warn
"""


@dataclass(frozen=True)
class KafkaPaths:
    root: Path

    @property
    def libs(self) -> Path:
        return self.root / "libs"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def config(self) -> Path:
        return self.root / "server.properties"

    @property
    def pid(self) -> Path:
        return self.root / "kafka.pid"


def paths(settings: Settings) -> KafkaPaths:
    return KafkaPaths(settings.state_dir / "kafka")


INTERNAL_HOST = "127.0.0.1"


def internal_port(settings: Settings) -> int:
    return settings.kafka.internal_port or settings.kafka.controller_port + 1


def _secured(settings: Settings) -> bool:
    return settings.kafka.security_protocol is not SecurityProtocol.PLAINTEXT


def _listener_lines(settings: Settings) -> list[str]:
    k = settings.kafka
    host, port, cport = k.host, k.port, k.controller_port
    if not _secured(settings):
        return [
            f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
            f"advertised.listeners=PLAINTEXT://{host}:{port}",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        ]
    from oddsflow.services import tls

    proto, iport = k.security_protocol.value, internal_port(settings)
    store, store_password = tls.ensure_pkcs12(settings.state_dir, "kafka")
    lines = [
        f"listeners={proto}://{host}:{port},INTERNAL://{INTERNAL_HOST}:{iport},"
        f"CONTROLLER://{host}:{cport}",
        f"advertised.listeners={proto}://{host}:{port},INTERNAL://{INTERNAL_HOST}:{iport}",
        "inter.broker.listener.name=INTERNAL",
        f"listener.security.protocol.map={proto}:{proto},INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "ssl.keystore.type=PKCS12",
        f"ssl.keystore.location={store}",
        f"ssl.keystore.password={store_password}",
        "ssl.client.auth=none",
    ]
    if k.security_protocol is SecurityProtocol.SASL_SSL:
        mech = k.sasl_mechanism
        lines += [
            f"listener.name.sasl_ssl.sasl.enabled.mechanisms={mech}",
            f"listener.name.sasl_ssl.{mech.lower()}.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        ]
    return lines


def server_properties(settings: Settings, p: KafkaPaths) -> str:
    k = settings.kafka
    host, cport = k.host, k.controller_port
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{host}:{cport}",
            *_listener_lines(settings),
            "controller.listener.names=CONTROLLER",
            f"log.dirs={p.data}",
            f"num.partitions={k.partitions}",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=4",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "num.network.threads=2",
            "num.io.threads=2",
            "log.retention.check.interval.ms=60000",
            "",
        ]
    )


def ensure_jars(settings: Settings, p: KafkaPaths) -> bool:
    """Fetch the broker jars once; returns True when something was downloaded."""
    done = p.libs / ".complete"
    version = settings.kafka.kafka_version
    if done.exists() and done.read_text().strip() == version:
        return False
    require_binary("java", "install a JDK 17+ (apt-get install openjdk-17-jre-headless)")
    mvn = require_binary("mvn", "install Maven (apt-get install maven)")
    p.root.mkdir(parents=True, exist_ok=True)
    pom = p.root / "pom.xml"
    pom.write_text(POM.format(kafka=version, log4j=LOG4J_VERSION))
    if p.libs.exists():
        for jar in p.libs.glob("*.jar"):
            jar.unlink()
    print(f"  fetching Apache Kafka {version} jars from Maven Central (once)...", flush=True)
    proc = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={p.libs}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise PrerequisiteError(
            "oddsflow: Maven could not fetch the Kafka jars; check that Maven Central is "
            f"reachable (mvn said: {(proc.stdout + proc.stderr).strip()[-400:]})"
        )
    done.write_text(version)
    return True


def _java_cmd(settings: Settings, p: KafkaPaths, *args: str) -> list[str]:
    heap = settings.kafka.heap
    return [
        "java",
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={p.root / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={p.logs}",
        "-cp",
        f"{p.libs}/*",
        *args,
    ]


def _answers(config: dict[str, object], timeout: float) -> bool:
    from confluent_kafka.admin import AdminClient

    try:  # a CA file not made yet (first start) is "not ready", not an error
        admin = AdminClient({**config, "log_level": 0, "logger": _silent_logger()})
        # describe_cluster, not list_topics: a broker holding thousands of topics (a long-lived
        # test broker) answers it at once, where listing every topic can outlast the timeout.
        cluster = admin.describe_cluster(request_timeout=timeout).result(timeout=timeout + 1)
    except Exception:
        return False
    return bool(cluster.nodes)


def is_ready(settings: Settings, timeout: float = 2.0) -> bool:
    """The broker answers a client configured exactly like the project's (TLS, SCRAM)."""
    from core.kafka_config import client_config

    return _answers(client_config(settings), timeout)


def _internal_config(settings: Settings) -> dict[str, object]:
    return {"bootstrap.servers": f"{INTERNAL_HOST}:{internal_port(settings)}"}


def ensure_scram_user(settings: Settings, username: str, password: str) -> None:
    """Create ``username`` (or reset its password) through the local INTERNAL listener."""
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    mech = ScramMechanism[settings.kafka.sasl_mechanism.replace("-", "_")]
    admin = AdminClient({**_internal_config(settings), "log_level": 0})
    upsert = UserScramCredentialUpsertion(
        username, ScramCredentialInfo(mech, 8192), password.encode()
    )
    futures = admin.alter_user_scram_credentials([upsert])
    try:
        futures[username].result(timeout=15)
    except Exception as exc:  # the broker's answer names the user, never the password
        raise PrerequisiteError(
            f"oddsflow: could not create the Kafka SCRAM user {username!r}: {exc}"
        ) from None


def _silent_logger():  # type: ignore[no-untyped-def]
    import logging

    log = logging.getLogger("oddsflow.kafka.probe")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    return log


def start(settings: Settings, timeout: float = 90.0) -> str:
    """Start the broker if it is not running; returns a one-line description."""
    p = paths(settings)
    pid = read_pid(p.pid)
    if pid is not None and is_ready(settings):
        return f"Kafka {settings.kafka.kafka_version} already running (pid {pid})"
    if pid is None and is_ready(settings):
        return f"Kafka at {settings.kafka.bootstrap_servers} (external, already running)"
    require_binary("java", "install a JDK 17+ (apt-get install openjdk-17-jre-headless)")
    k = settings.kafka
    if pid is None:
        require_free_port(k.host, k.port, "Kafka", "ODDSFLOW_KAFKA__BOOTSTRAP_SERVERS")
        require_free_port(
            k.host, k.controller_port, "the Kafka controller", "ODDSFLOW_KAFKA__CONTROLLER_PORT"
        )
        if _secured(settings):
            require_free_port(
                INTERNAL_HOST,
                internal_port(settings),
                "the Kafka internal listener",
                "ODDSFLOW_KAFKA__INTERNAL_PORT",
            )
    ensure_jars(settings, p)
    for d in (p.data, p.logs):
        d.mkdir(parents=True, exist_ok=True)
    p.config.write_text(server_properties(settings, p))
    (p.root / "log4j2.properties").write_text(LOG4J2.format(log_dir=p.logs))
    if not (p.data / "meta.properties").exists():
        cluster_id = uuid.uuid4().bytes
        cid = base64.urlsafe_b64encode(cluster_id).decode().rstrip("=")
        fmt = subprocess.run(
            _java_cmd(
                settings,
                p,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cid,
                "-c",
                str(p.config),
                "--ignore-formatted",
            ),
            capture_output=True,
            text=True,
        )
        if fmt.returncode != 0:
            raise PrerequisiteError(
                f"oddsflow: formatting Kafka storage failed: {fmt.stderr.strip()[-400:]}"
            )
    if pid is None:
        with open(p.logs / "stdout.log", "ab") as out:
            proc = subprocess.Popen(
                _java_cmd(settings, p, "kafka.Kafka", str(p.config)),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
        p.pid.write_text(str(proc.pid))
        pid = proc.pid
    deadline = time.monotonic() + timeout
    user_ready = k.security_protocol is not SecurityProtocol.SASL_SSL
    while time.monotonic() < deadline:
        if not user_ready and _answers(_internal_config(settings), timeout=1.0):
            ensure_scram_user(settings, k.sasl_username or "", k.password or "")
            user_ready = True
        if user_ready and is_ready(settings, timeout=1.0):
            how = "" if not _secured(settings) else f" ({k.security_protocol.value})"
            return f"Kafka {k.kafka_version} ready at {k.bootstrap_servers}{how} (pid {pid})"
        if read_pid(p.pid) is None:
            raise PrerequisiteError(
                "oddsflow: the Kafka broker exited during start-up; its log says:\n"
                + tail(p.logs / "stdout.log")
                + "\n"
                + tail(p.logs / "server.log")
            )
        time.sleep(0.3)
    raise PrerequisiteError(
        f"oddsflow: Kafka did not answer within {timeout:.0f}s; see {p.logs / 'server.log'}"
    )


def stop(settings: Settings) -> str:
    p = paths(settings)
    pid = read_pid(p.pid)
    if pid is None:
        return "Kafka not running"
    stop_pid(pid, timeout=30)
    p.pid.unlink(missing_ok=True)
    return f"Kafka stopped (pid {pid})"


def status(settings: Settings) -> tuple[bool, str]:
    p = paths(settings)
    pid = read_pid(p.pid)
    ready = is_ready(settings, timeout=1.5)
    where = settings.kafka.bootstrap_servers
    if ready:
        who = f"pid {pid}" if pid else "external"
        return True, f"kafka     up    {where}  ({who}, Kafka {settings.kafka.kafka_version})"
    if pid:
        return False, f"kafka     starting/unresponsive  {where}  (pid {pid})"
    return False, f"kafka     down  {where}"
