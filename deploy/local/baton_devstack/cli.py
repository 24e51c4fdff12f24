"""``baton-devstack``: local Kafka (from Maven Central) and PostgreSQL, no Docker needed."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from baton_devstack import infra, stack
from baton_devstack.kafka import KafkaStartError
from baton_devstack.kafka_cluster import KafkaCluster
from baton_devstack.kafka_fetch import KafkaFetchError, ensure_kafka, kafka_version
from baton_devstack.postgres import PostgresError

log = logging.getLogger("baton_devstack")


def _fetch_kafka(_: argparse.Namespace) -> int:
    libs = ensure_kafka()
    print(f"Apache Kafka {kafka_version()} jars in {libs}")
    return 0


def _infra_up(args: argparse.Namespace) -> int:
    _print_env(infra.start_infra(args.state_dir))
    log.info("env written to %s", args.state_dir / infra.ENV_FILE)
    return 0


def _infra_down(args: argparse.Namespace) -> int:
    infra.stop_infra(args.state_dir)
    return 0


def _infra_status(args: argparse.Namespace) -> int:
    status = infra.infra_status(args.state_dir)
    for name, running in status.items():
        print(f"{name}: {'running' if running else 'stopped'}")
    _print_env(infra.read_env(args.state_dir))
    return 0 if all(status.values()) else 3


def _kafka_cluster(args: argparse.Namespace) -> int:
    with KafkaCluster(args.state_dir / "kafka-cluster") as cluster:
        _print_env({"KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap_servers})
        for node in cluster.nodes:
            print(f"node {node.node_id}: pid {node.pid}, log {node.log_path}")
        print("Ctrl-C stops the cluster (data kept)")
        _wait_for_stop()
    return 0


def _wait_for_stop() -> None:
    """Block until SIGINT (Ctrl-C) or SIGTERM, whatever this process inherited for them."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass


def _print_env(env: dict[str, str]) -> None:
    for key, value in env.items():
        print(f"{key}={value}")


def _up(args: argparse.Namespace) -> int:
    urls = stack.up(args.state_dir)
    for name, url in urls.items():
        print(f"{name}: {url}")
    print(f"logs in {args.state_dir / 'logs'}; stop with: make down")
    return 0


def _down(args: argparse.Namespace) -> int:
    stack.down(args.state_dir)
    return 0


def _run(args: argparse.Namespace) -> int:
    return stack.run(args.state_dir)


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "up": (_up, "start Kafka, PostgreSQL and the four services in the background"),
    "down": (_down, "stop everything `up` started; leave no process behind"),
    "run": (_run, "start everything in the foreground with demo reps and traffic; Ctrl-C stops"),
    "fetch-kafka": (_fetch_kafka, "download the pinned Kafka broker jars into the cache"),
    "infra-up": (_infra_up, "start Kafka and PostgreSQL in the background"),
    "infra-down": (_infra_down, "stop the Kafka and PostgreSQL started by infra-up"),
    "infra-status": (_infra_status, "show whether the local infra is running"),
    "kafka-cluster": (_kafka_cluster, "run a three-broker KRaft cluster in the foreground"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="baton-devstack", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where pids, logs, data and the env file live "
        "(default: $BATON_DEVSTACK_DIR or <repo>/.devstack)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (handler, help_text) in COMMANDS.items():
        commands.add_parser(name, help=help_text).set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args.state_dir = (args.state_dir or infra.default_state_dir()).resolve()
    try:
        return int(args.handler(args))
    except (KafkaFetchError, KafkaStartError, PostgresError, stack.StackError) as exc:
        log.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
