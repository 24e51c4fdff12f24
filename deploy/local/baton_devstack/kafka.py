"""Single-node Apache Kafka (KRaft, broker+controller) on 127.0.0.1, run from Maven jars.

Layout of a workdir::

    server.properties   log4j2.yaml   kafka.log   kafka.pid   data/
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

from baton_devstack import kafka_probe
from baton_devstack.kafka_fetch import ensure_kafka, kafka_version
from baton_devstack.kafka_security import SaslSsl
from baton_devstack.ports import LOCALHOST, free_port, port_is_free
from baton_devstack.processes import (
    pid_alive,
    pid_cmdline,
    read_pid_file,
    send_signal,
    terminate_pid,
    wait_pid_exit,
)

__all__ = ["KafkaStartError", "LocalKafka", "ensure_kafka", "find_java", "kafka_version"]

log = logging.getLogger(__name__)

NODE_ID = 1
MAIN_CLASS = "kafka.Kafka"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0

_SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id={node_id}
controller.quorum.voters={node_id}@{host}:{controller_port}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data_dir}
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.partitions=3
auto.create.topics.enable=false
# After a crash (kill()) the restarted broker can only re-register once the old
# registration's session expires; the default 9 s would dominate the restart time.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
"""

# Quiet broker: warnings only, plus KafkaRaftServer's "Kafka Server started" line.
_LOG4J2_YAML = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      target: SYSTEM_OUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka
        level: WARN
      - name: org.apache.kafka
        level: WARN
      - name: kafka.server.KafkaRaftServer
        level: INFO
"""


class KafkaStartError(RuntimeError):
    """The broker did not become ready; the message ends with the tail of kafka.log."""


def find_java() -> str:
    """``$JAVA_HOME/bin/java`` when JAVA_HOME is set, else ``java`` from PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaStartError("Java 17+ is needed to run Kafka: set JAVA_HOME or put java on PATH")
    return java


def _cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class LocalKafka:
    """A single-node KRaft Kafka broker living in ``workdir``.

    Ports default to free ones, chosen once and kept for the object's lifetime, so
    ``stop()`` followed by ``start()`` brings the same broker back on the same
    address with its data. ``detach=True`` puts the JVM in its own session so it
    outlives the launching process (used by ``baton-devstack infra-up``). A broker
    started by another process is found through ``kafka.pid`` and can be stopped.
    """

    node_id = NODE_ID
    cluster_id: str | None = None  # None: a random one when the storage is formatted

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        controller_port: int | None = None,
        *,
        detach: bool = False,
        heap_max: str = "1g",
        sasl_ssl: SaslSsl | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.port = port if port is not None else free_port()
        self.controller_port = controller_port if controller_port is not None else free_port()
        self.detach = detach
        self.heap_max = heap_max
        self.sasl_ssl = sasl_ssl  # an extra SASL_SSL listener (kafka_security)
        self._proc: subprocess.Popen[bytes] | None = None

    # -- paths & addresses -------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"{LOCALHOST}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "kafka.log"

    @property
    def pid_path(self) -> Path:
        return self.workdir / "kafka.pid"

    @property
    def config_path(self) -> Path:
        return self.workdir / "server.properties"

    @property
    def pid(self) -> int | None:
        """Pid of the running broker JVM (ours or recorded in kafka.pid), else None."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        pid = read_pid_file(self.pid_path)
        return pid if pid is not None and self._is_our_broker(pid) else None

    @property
    def is_running(self) -> bool:
        return self.pid is not None

    # -- lifecycle -----------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the broker (formatting storage on first use) and wait until it serves."""
        if self.is_running:
            self.wait_ready(timeout)
            return
        extra = [self.sasl_ssl.port] if self.sasl_ssl else []
        for port in (self.port, self.controller_port, *extra):
            if not port_is_free(port):
                raise KafkaStartError(f"cannot start Kafka: port {port} is already in use")
        libs = ensure_kafka()
        self._write_config()
        self._format_storage(libs)
        self._launch(libs)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        log.info("Kafka %s ready on %s (pid %s)", kafka_version(), self.bootstrap_servers, self.pid)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until ApiVersions succeeds and Metadata lists this broker."""
        deadline = time.monotonic() + timeout
        while not kafka_probe.broker_ready(LOCALHOST, self.port, self.node_id, timeout=2.0):
            if not self.is_running:
                raise KafkaStartError(f"Kafka exited during startup\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise KafkaStartError(
                    f"Kafka not ready on {self.bootstrap_servers} after {timeout:.0f}s\n"
                    f"{self.log_tail()}"
                )
            self._wait_exit(0.2)  # paces the probes; returns early if the JVM dies

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Graceful shutdown: SIGTERM, wait up to ``timeout`` s, then SIGKILL."""
        pid = self.pid
        if pid is not None:
            send_signal(pid, signal.SIGCONT)  # a paused JVM cannot handle SIGTERM
            if self._owns(pid):
                self._terminate_child(timeout)
            else:
                terminate_pid(pid, timeout)
        self._forget()

    def kill(self) -> None:
        """Crash the broker (SIGKILL) without a clean shutdown."""
        pid = self.pid
        if pid is not None:
            send_signal(pid, signal.SIGKILL)
            self._wait_exit(10.0)
        self._forget()

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        """``stop()`` then ``start()`` on the same workdir and ports."""
        self.stop()
        self.start(timeout)

    def pause_process(self) -> None:
        """Freeze the JVM (SIGSTOP): the port stays bound but nothing answers."""
        self._signal_running(signal.SIGSTOP)

    def resume_process(self) -> None:
        """Undo ``pause_process()`` (SIGCONT)."""
        self._signal_running(signal.SIGCONT)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of kafka.log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no kafka.log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- internals ---------------------------------------------------------

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        properties = self._server_properties()
        if self.sasl_ssl is not None:
            properties = self.sasl_ssl.server_properties(properties, LOCALHOST)
        self.config_path.write_text(properties)
        (self.workdir / "log4j2.yaml").write_text(_LOG4J2_YAML)

    def _server_properties(self) -> str:
        """server.properties of a single-node cluster (a kafka_cluster node adds its peers)."""
        return _SERVER_PROPERTIES.format(
            node_id=self.node_id,
            host=LOCALHOST,
            port=self.port,
            controller_port=self.controller_port,
            data_dir=self.data_dir,
        )

    def _java_cmd(self, libs: Path, main_class: str, *args: str) -> list[str]:
        return [
            find_java(),
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.yaml'}",
            "-cp",
            f"{libs}/*",
            main_class,
            *args,
        ]

    def _format_storage(self, libs: Path) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        # "--cluster-id=ID": a random id may start with "-", which "-t ID" would misparse.
        cmd = self._java_cmd(
            libs, "kafka.tools.StorageTool", "format",
            f"--cluster-id={self.cluster_id or _cluster_id()}", f"--config={self.config_path}",
            *(self.sasl_ssl.format_args() if self.sasl_ssl else []),
        )  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise KafkaStartError(f"kafka-storage format failed:\n{result.stdout}{result.stderr}")

    def _launch(self, libs: Path) -> None:
        cmd = self._java_cmd(libs, MAIN_CLASS, str(self.config_path))
        cmd[1:1] = ["-Xms256m", f"-Xmx{self.heap_max}"]
        with self.log_path.open("ab") as log_file:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=self.detach,
            )
        self.pid_path.write_text(f"{self._proc.pid}\n")

    def _is_our_broker(self, pid: int) -> bool:
        """Guard against recycled pids: the process must be kafka.Kafka on our config."""
        argv = pid_cmdline(pid)
        return pid_alive(pid) and MAIN_CLASS in argv and str(self.config_path) in argv

    def _owns(self, pid: int) -> bool:
        return self._proc is not None and self._proc.pid == pid

    def _wait_exit(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for the JVM to exit (reaping it when it is our child)."""
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        elif (pid := read_pid_file(self.pid_path)) is not None:
            wait_pid_exit(pid, timeout)

    def _terminate_child(self, timeout: float) -> None:
        assert self._proc is not None
        self._proc.terminate()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("Kafka pid %s ignored SIGTERM for %ss; killing it", self._proc.pid, timeout)
            self._proc.kill()
            self._proc.wait()

    def _signal_running(self, sig: signal.Signals) -> None:
        pid = self.pid
        if pid is None:
            raise RuntimeError("Kafka is not running")
        send_signal(pid, sig)

    def _forget(self) -> None:
        self._proc = None
        self.pid_path.unlink(missing_ok=True)
