"""``baton routing``: the routing configuration as a file, against the router's database.

``export`` writes the database's configuration as YAML; ``apply FILE`` validates the
file, prints the plan and applies it in one transaction (``--dry-run``: the plan only);
``import-accounts FILE.csv`` sets account owners from a CRM export through the same
plan. The database is ``DATABASE_URL`` (or ``--database-url``), the router's own;
webhook secrets are sealed with the router's ``BATON_ROUTER_SECRET_KEY``.
Problems the user can fix end with exit status 2, one line each naming file, line and
field.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TextIO

from sqlalchemy.exc import DBAPIError, ProgrammingError

from baton_router.config_file.accounts_csv import merge_accounts, read_accounts
from baton_router.config_file.model import DocumentInvalid, parse_document
from baton_router.config_file.plan import (
    Item,
    Snapshot,
    desired_items,
    export_document,
    render,
)
from baton_router.config_file.source import Lines, LocatedInvalid, dump, load
from baton_router.secret_box import box_from_environment
from baton_router.store.routing_document import RoutingDocumentStore
from baton_shared.clock import utcnow
from baton_shared.database import make_engine, make_sessionmaker
from baton_shared.settings import DatabaseSettings

DEFAULT_DATABASE_URL = DatabaseSettings.model_fields["database_url"].default
EPILOG = """\
examples:
  baton routing export -o routing.yaml
  baton routing apply routing.yaml --dry-run     # the plan only
  baton routing apply routing.yaml
  baton routing import-accounts accounts.csv --dry-run

The file's format: docs/routing.md, "Configuration as code".
"""


def add_routing_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``routing`` and its commands, under ``sub`` (the ``baton`` command's subparsers)."""
    routing = sub.add_parser(
        "routing",
        help="routing configuration as a YAML file: export, plan, apply",
        description="Reps, pools, rules, accounts and nurture tracks as one YAML file.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    routing.add_argument("--database-url", help="the router's PostgreSQL (default: DATABASE_URL)")
    commands = routing.add_subparsers(dest="routing_command", metavar="COMMAND", required=True)
    export = commands.add_parser("export", help="write the configuration as YAML")
    export.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    apply = commands.add_parser("apply", help="make the database match a file")
    apply.add_argument("file", type=Path, help="the YAML configuration file")
    apply.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    accounts = commands.add_parser(
        "import-accounts",
        help="set account owners from a CRM export (CSV)",
        description="Columns: domain (or account_domain, website, company_domain_name) "
        "and owner_email or owner_rep_id; others are ignored.",
    )
    accounts.add_argument("file", type=Path, help="the CSV file")
    accounts.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    accounts.add_argument(
        "--prune", action="store_true", help="also delete accounts the CSV does not list"
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``baton routing COMMAND`` (output to ``out``, default stdout); the exit status."""
    out = out or sys.stdout
    url = args.database_url or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    try:
        if args.routing_command == "export":
            text = dump(export_document(asyncio.run(_snapshot(url))))
            if args.output is None:
                out.write(text)
            else:
                args.output.write_text(text, encoding="utf-8")
            return 0
        if args.routing_command == "apply":
            desired = _file_items(args.file, os.environ)
            return asyncio.run(_apply(url, lambda _: desired, args.dry_run, out))
        text = args.file.read_text(encoding="utf-8-sig")
        plan_for = partial(_csv_items, args.file, text, prune=args.prune)
        return asyncio.run(_apply(url, plan_for, args.dry_run, out))
    except DocumentInvalid as exc:
        print(exc, file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"baton routing: {exc}", file=sys.stderr)
        return 2
    except ProgrammingError:
        print(
            "baton routing: the router's tables are missing at DATABASE_URL; start the "
            "router once (it creates them)",
            file=sys.stderr,
        )
        return 2
    except DBAPIError as exc:
        print(f"baton routing: the database refused ({type(exc.orig).__name__})", file=sys.stderr)
        return 1


@asynccontextmanager
async def _store(url: str) -> AsyncIterator[RoutingDocumentStore]:
    engine = make_engine(url, pool_size=1)
    try:
        yield RoutingDocumentStore(make_sessionmaker(engine), box_from_environment(os.environ))
    finally:
        await engine.dispose()


async def _snapshot(url: str) -> Snapshot:
    async with _store(url) as store:
        return await store.snapshot()


async def _apply(
    url: str, desired_of: Callable[[Snapshot], list[Item]], dry_run: bool, out: TextIO
) -> int:
    async with _store(url) as store:
        plan, made = await store.plan_and_apply(desired_of, dry_run, utcnow())
    print(render(plan), file=out)
    if plan:
        print("Dry run: nothing was changed." if dry_run else "Applied.", file=out)
    for item, secret in made:
        print(
            f"New webhook secret of {item.kind.replace('_', ' ')} {item.key!r} (shown once): "
            f"{secret}",
            file=out,
        )
    return 0


def _file_items(path: Path, env: Mapping[str, str]) -> list[Item]:
    """The file's entries, validated as the API validates them."""
    data, lines = load(path)
    try:
        return desired_items(parse_document(data), env)
    except DocumentInvalid as exc:
        raise LocatedInvalid(path, exc.problems, lines) from None


def _csv_items(path: Path, text: str, snapshot: Snapshot, *, prune: bool) -> list[Item]:
    """The database's configuration with the CSV's account owners set."""
    emails = {i.id: str(i.fields["email"]) for i in snapshot.items if i.kind == "rep" and i.id}
    try:
        accounts = read_accounts(text, emails)
    except DocumentInvalid as exc:
        raise LocatedInvalid(path, exc.problems, Lines()) from None
    return merge_accounts(snapshot.items, accounts, prune)
