"""``baton routing`` against a real PostgreSQL with the router's migrations: export, edit,
plan, apply, export again; dry runs change nothing; re-applying is a no-op; CRM account
owners through the same plan; and a running router routes by what was applied."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from baton_analytics.cli import main
from baton_router.secret_box import SecretBox
from baton_router.service import RouterService
from baton_router.signing import new_secret
from baton_router.store.configuration import ConfigStore
from baton_shared.database import make_sessionmaker
from tests.router.test_router_service import (  # noqa: F401 (fixtures)
    receiver_factory,
    router,
    send,
    sql_transition,
)
from tests.support.webhooks import next_delivery

pytestmark = pytest.mark.integration


async def baton(capsys, db_url: str, *args: str) -> tuple[int, str, str]:
    """``baton routing --database-url URL ARGS``, as a user runs it."""
    code = await asyncio.to_thread(main, ["routing", "--database-url", db_url, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def seed(config: ConfigStore) -> None:
    """A team made through the API's store: two reps, a pool, a rule, a track, an account."""
    url = "https://hooks.example.com/"
    ada = await config.create_rep("Ada", "ada@example.com", url + "ada", new_secret(),
                                  timezone="Europe/Berlin", capacity=10)  # fmt: skip
    bob = await config.create_rep("Bob", "bob@example.com", url + "bob", new_secret(),
                                  skills={"regions": ["emea"]})  # fmt: skip
    pool = await config.create_pool(
        {"name": "emea", "strategy": "round_robin", "express": False, "escalation": "manager",
         "manager_rep_id": ada.id, "max_reassignments": 1}, [ada.id, bob.id])  # fmt: skip
    await config.create_rule({"name": "DACH", "position": 10, "enabled": True,
                              "conditions": [{"field": "country", "op": "in",
                                              "value": ["de", "at"]}],
                              "pool_id": pool.id})  # fmt: skip
    await config.create_track({"name": "newsletter", "position": 100, "conditions": [],
                               "webhook_url": "https://mail.example.com/", "sdr_pool_id": pool.id,
                               "webhook_secret": new_secret()})  # fmt: skip
    await config.put_account("acme.com", ada.id)


@pytest.fixture
async def config(engines: tuple[AsyncEngine, AsyncEngine]) -> ConfigStore:
    store = ConfigStore(make_sessionmaker(engines[0]))
    await seed(store)
    return store


async def rows(engine: AsyncEngine, sql: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text(sql))).all()]


async def test_export_edit_apply_export_yields_the_edited_document(
    config, db_url, engines, tmp_path: Path, capsys
):
    exported = tmp_path / "routing.yaml"
    code, _, err = await baton(capsys, db_url, "export", "-o", str(exported))
    assert code == 0, err
    document = yaml.safe_load(exported.read_text())
    assert [r["email"] for r in document["reps"]] == ["ada@example.com", "bob@example.com"]
    assert "whsec_" not in exported.read_text()  # secrets stay out of the file
    assert document["pools"][0]["manager"] == "ada@example.com"
    assert document["nurture_tracks"][0]["sdr_pool"] == "emea"

    # The edit: Ada's capacity, a new rep in the pool, the rule gone, Acme to Cleo.
    document["reps"][0]["capacity"] = 12
    document["reps"].append({"email": "cleo@example.com", "name": "Cleo",
                             "webhook_url": "https://hooks.example.com/cleo",
                             "slack_webhook_url": "https://hooks.slack.com/T/B/c"})  # fmt: skip
    document["pools"][0]["members"].append("cleo@example.com")
    document["rules"] = []
    document["accounts"] = [{"domain": "acme.com", "owner": "cleo@example.com"}]
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(document, sort_keys=False))

    code, out, err = await baton(capsys, db_url, "apply", str(edited), "--dry-run")
    assert code == 0, err
    assert out.splitlines() == [
        "  ~ change rep 'ada@example.com': capacity 10 → 12",
        "  + create rep 'cleo@example.com'",
        "  ~ change pool 'emea': members [\"ada@example.com\", \"bob@example.com\"] → "
        "[\"ada@example.com\", \"bob@example.com\", \"cleo@example.com\"]",
        "  - delete rule 'DACH'",
        "  ~ change account 'acme.com': owner \"ada@example.com\" → \"cleo@example.com\"",
        "Plan: 1 to create, 3 to change, 1 to delete.",
        "Dry run: nothing was changed.",
    ]
    code, after_dry_run, _ = await baton(capsys, db_url, "export")
    assert yaml.safe_load(after_dry_run) == yaml.safe_load(exported.read_text())

    code, out, err = await baton(capsys, db_url, "apply", str(edited))
    assert code == 0, err
    assert "Applied." in out
    assert "New webhook secret of rep 'cleo@example.com' (shown once): whsec_" in out

    code, again, _ = await baton(capsys, db_url, "export")
    exported_again = yaml.safe_load(again)
    cleo = exported_again["reps"][2]
    assert uuid.UUID(cleo.pop("id"))  # a new rep gets its id from the database
    assert exported_again == document

    code, out, _ = await baton(capsys, db_url, "apply", str(edited))
    assert (code, out.strip()) == (0, "No changes: the database matches the file.")
    # Ada kept her secret and her state; Cleo is a member with a fresh round-robin state.
    assert await rows(engines[0], "SELECT count(*) FROM router.pool_members") == [(3,)]


async def test_a_rep_left_out_is_archived_and_its_secret_is_replaced_from_the_env(
    config, db_url, engines, tmp_path: Path, capsys, monkeypatch
):
    [bob] = [r for r in await config.list_reps() if r.name == "Bob"]
    await config.put_account("globex.com", bob.id)
    code, out, _ = await baton(capsys, db_url, "export")
    document = yaml.safe_load(out)
    document["reps"] = document["reps"][:1]
    document["accounts"] = [{"domain": d, "owner": "ada@example.com"}
                            for d in ("acme.com", "globex.com")]  # fmt: skip
    document["reps"][0]["webhook_secret"] = {"env": "BATON_TEST_ADA_SECRET"}
    document["pools"][0]["members"] = ["ada@example.com"]
    secret = new_secret()
    monkeypatch.setenv("BATON_TEST_ADA_SECRET", secret)
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    code, out, err = await baton(capsys, db_url, "apply", str(path))
    assert code == 0, err
    assert "  - archive rep 'bob@example.com'" in out
    assert "  ~ change rep 'ada@example.com': webhook_secret replaced" in out
    assert secret not in out
    reps = await rows(engines[0], "SELECT email, webhook_secret, archived_at IS NOT NULL "
                                  "FROM router.reps ORDER BY email")  # fmt: skip
    assert reps == [("ada@example.com", reps[0][1], False), ("bob@example.com", reps[1][1], True)]
    assert secret[6:] not in reps[0][1]  # stored sealed, with the router's (local) key
    assert SecretBox.local().open(reps[0][1]).current == secret
    # Bob's account, released by his archiving, goes to Ada in the same transaction.
    owners = await rows(engines[0], "SELECT a.domain, r.email FROM router.accounts a "
                                    "JOIN router.reps r ON r.id = a.rep_id ORDER BY 1")  # fmt: skip
    assert owners == [("acme.com", "ada@example.com"), ("globex.com", "ada@example.com")]


async def test_a_file_with_an_error_changes_nothing_and_names_its_line(
    config, db_url, tmp_path: Path, capsys
):
    code, before, _ = await baton(capsys, db_url, "export")
    broken = before.replace("capacity: 10", "capacity: lots")
    path = tmp_path / "routing.yaml"
    path.write_text(broken)
    line = broken.splitlines().index("    capacity: lots") + 1
    code, _, err = await baton(capsys, db_url, "apply", str(path))
    assert code == 2
    assert err.strip() == f"{path}:{line}: reps[0].capacity: Input should be a valid integer"
    assert (await baton(capsys, db_url, "export"))[1] == before


async def test_account_owners_from_a_crm_export(config, db_url, engines, tmp_path: Path, capsys):
    [(bob_id,)] = await rows(engines[0], "SELECT id FROM router.reps WHERE name = 'Bob'")
    csv = tmp_path / "accounts.csv"
    csv.write_text(
        "Account Name,Website,Owner Email,Owner Rep Id\n"
        "Acme,https://www.acme.com/,bob@example.com,\n"
        f"Globex,globex.com,,{bob_id}\n"
    )
    code, out, err = await baton(capsys, db_url, "import-accounts", str(csv), "--dry-run")
    assert code == 0, err
    assert out.splitlines() == [
        "  ~ change account 'acme.com': owner \"ada@example.com\" → \"bob@example.com\"",
        "  + create account 'globex.com'",
        "Plan: 1 to create, 1 to change, 0 to delete.",
        "Dry run: nothing was changed.",
    ]
    code, out, err = await baton(capsys, db_url, "import-accounts", str(csv))
    assert code == 0, err
    accounts = await rows(engines[0], "SELECT domain, rep_id FROM router.accounts ORDER BY 1")
    assert accounts == [("acme.com", bob_id), ("globex.com", bob_id)]
    code, out, _ = await baton(capsys, db_url, "import-accounts", str(csv))
    assert out.strip() == "No changes: the database matches the file."

    csv.write_text("domain,owner_email\nacme.com,zed@example.com\n")
    code, _, err = await baton(capsys, db_url, "import-accounts", str(csv))
    assert (code, err.strip()) == (
        2, f"{csv}:2: owner_email: no rep with email 'zed@example.com'"
    )


async def test_a_crm_export_larger_than_one_statement_is_imported_and_pruned(
    config, db_url, engines, tmp_path: Path, capsys
):
    n = 12_000
    csv = tmp_path / "accounts.csv"
    csv.write_text("domain,owner_email\n" + "".join(
        f"customer-{i}.example.com,{'bob' if i % 2 else 'ada'}@example.com\n" for i in range(n)
    ))  # fmt: skip
    code, out, err = await baton(capsys, db_url, "import-accounts", str(csv), "--prune")
    assert code == 0, err
    assert f"Plan: {n} to create, 0 to change, 1 to delete." in out  # acme.com is pruned
    assert await rows(engines[0], "SELECT count(*) FROM router.accounts") == [(n,)]


async def test_a_running_router_routes_by_the_applied_configuration(
    router: RouterService,  # noqa: F811
    producer,
    receiver_factory,  # noqa: F811
    tmp_path: Path,
    capsys,
):
    ada, bob = receiver_factory(), receiver_factory()
    db_url = router.settings.database_url
    document = {
        "version": 1,
        "reps": [
            {"email": "ada@example.com", "name": "Ada", "webhook_url": ada.url + "/hook"},
            {"email": "bob@example.com", "name": "Bob", "webhook_url": bob.url + "/hook"},
        ],
        "pools": [{"name": "enterprise", "members": ["bob@example.com"]}],
        "rules": [{"name": "big deals", "pool": "enterprise",
                   "conditions": [{"field": "traits.plan", "op": "eq", "value": "enterprise"}]}],
    }  # fmt: skip
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(document))
    code, _, err = await baton(capsys, db_url, "apply", str(path))
    assert code == 0, err

    topic = router.settings.topics.transitions
    lead = sql_transition().model_copy(update={"express": False, "traits": {"plan": "enterprise"}})
    await send(producer, topic, lead.to_bytes(), lead.lead_id)
    assert orjson.loads((await next_delivery(bob)).body)["data"]["lead_id"] == lead.lead_id

    # The same router, the rule now pointing at Ada's pool: the next lead goes to Ada.
    document["pools"].append({"name": "closers", "members": ["ada@example.com"]})
    document["rules"][0]["pool"] = "closers"
    path.write_text(yaml.safe_dump(document))
    code, _, err = await baton(capsys, db_url, "apply", str(path))
    assert code == 0, err
    lead = sql_transition().model_copy(update={"express": False, "traits": {"plan": "enterprise"}})
    await send(producer, topic, lead.to_bytes(), lead.lead_id)
    assert orjson.loads((await next_delivery(ada)).body)["data"]["lead_id"] == lead.lead_id
