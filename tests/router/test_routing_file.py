"""The routing configuration file without a database: validation with file, line and
field; the plan a document makes against a given database snapshot; CRM CSV rows."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from baton_analytics.cli import main
from baton_router.config_file.accounts_csv import merge_accounts, read_accounts
from baton_router.config_file.cli import _file_items
from baton_router.config_file.model import DocumentInvalid, parse_document
from baton_router.config_file.plan import (
    Item,
    Snapshot,
    desired_items,
    export_document,
    make_item,
    make_plan,
    render,
)
from baton_router.config_file.source import LocatedInvalid, dump, load
from baton_router.signing import new_secret
from tests.test_docs import code_blocks

ADA = uuid.uuid4()
DOCUMENT = """\
version: 1
reps:
  - email: ada@example.com
    name: Ada
    webhook_url: https://hooks.example.com/ada
    capacity: 10
  - email: bob@example.com
    name: Bob
    webhook_url: https://hooks.example.com/bob
    webhook_secret: {env: BOB_SECRET}
pools:
  - name: emea
    members: [ada@example.com, bob@example.com]
    escalation: manager
    manager: ada@example.com
rules:
  - name: DACH
    pool: emea
    conditions:
      - {field: country, op: in, value: [de, at, ch]}
accounts:
  - {domain: acme.com, owner: ada@example.com}
"""


SECRET = new_secret()


def items(text: str, env: dict[str, str] | None = None) -> list[Item]:
    """The document's items, with BOB_SECRET set unless ``env`` is given."""
    env = {"BOB_SECRET": SECRET} if env is None else env
    return desired_items(parse_document(yaml.safe_load(text)), env)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(text)
    return path


def test_a_bad_value_is_reported_with_file_line_and_field(tmp_path, capsys):
    path = write(tmp_path, DOCUMENT.replace("capacity: 10", "capacity: -1"))
    assert main(["routing", "apply", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:6: reps[0].capacity: Input should be greater than or equal to 0" in err


def test_the_api_rules_apply_to_the_file(tmp_path):
    """A rule condition the API refuses is refused here with the API's message."""
    bad = DOCUMENT.replace("value: [de, at, ch]", "value: [de, 3]")
    with pytest.raises(LocatedInvalid) as caught:
        _load(write(tmp_path, bad))
    assert str(caught.value) == (
        f"{tmp_path}/routing.yaml:20: rules[0].conditions[0]: 'country' is text; 3 is not "
        "(quote it)"
    )


def test_references_must_name_entries_of_the_file(tmp_path):
    bad = DOCUMENT.replace("members: [ada@example.com, bob@example.com]",
                           "members: [ada@example.com, zed@example.com]")  # fmt: skip
    bad = bad.replace("pool: emea", "pool: apac")
    with pytest.raises(LocatedInvalid) as caught:
        _load(write(tmp_path, bad))
    assert caught.value.messages == [
        f"{tmp_path}/routing.yaml:13: pools[0].members[1]: no rep with email "
        "'zed@example.com' in this file",
        f"{tmp_path}/routing.yaml:18: rules[0].pool: no pool named 'apac' in this file",
    ]


def test_availability_and_unknown_fields_are_refused(tmp_path):
    bad = DOCUMENT.replace("    capacity: 10\n", "    capacity: 10\n    status: away\n")
    bad = bad.replace("escalation: manager", "escalation: manager\n    manager_rep_id: x")
    with pytest.raises(LocatedInvalid) as caught:
        _load(write(tmp_path, bad))
    first, second = caught.value.messages
    assert first.startswith(f"{tmp_path}/routing.yaml:7: reps[0].status: availability belongs")
    assert second == f"{tmp_path}/routing.yaml:16: pools[0].manager_rep_id: unknown field"


def test_yaml_errors_and_keys_given_twice_name_their_line(tmp_path):
    with pytest.raises(LocatedInvalid) as caught:
        load(write(tmp_path, DOCUMENT.replace("    capacity: 10\n", "    name: Ada\n")))
    assert caught.value.messages == [f"{tmp_path}/routing.yaml:6: reps[0].name: given twice"]
    with pytest.raises(LocatedInvalid) as caught:
        load(write(tmp_path, "version: 1\nreps: [\n"))
    assert caught.value.messages[0].startswith(f"{tmp_path}/routing.yaml:3: (document): not valid")


def test_a_secret_is_referenced_and_must_be_set(tmp_path):
    with pytest.raises(DocumentInvalid) as caught:
        items(DOCUMENT, env={})
    assert str(caught.value) == (
        "reps[1].webhook_secret: the environment variable BOB_SECRET is not set"
    )
    with pytest.raises(DocumentInvalid, match="not a webhook secret"):
        items(DOCUMENT, env={"BOB_SECRET": "hunter2"})


def test_a_file_without_version_is_refused():
    with pytest.raises(DocumentInvalid, match="version: Field required"):
        parse_document({"reps": []})


def test_against_an_empty_database_everything_is_created():
    plan = make_plan(items(DOCUMENT), Snapshot([]))
    assert render(plan).splitlines() == [
        "  + create rep 'ada@example.com'",
        "  + create rep 'bob@example.com'",
        "  + create pool 'emea'",
        "  + create rule 'DACH'",
        "  + create account 'acme.com'",
        "Plan: 5 to create, 0 to change, 0 to delete.",
    ]


def test_the_same_configuration_plans_nothing():
    desired = items(DOCUMENT)
    assert not make_plan(desired, Snapshot(desired))
    assert render(make_plan(desired, Snapshot(desired))) == (
        "No changes: the database matches the file."
    )


def test_changes_and_deletes_are_planned_per_kind_and_name():
    current = items(DOCUMENT)
    edited = DOCUMENT.replace("capacity: 10", "capacity: 12").replace(
        "  - {domain: acme.com, owner: ada@example.com}\n", ""
    )
    plan = make_plan(items(edited, {"BOB_SECRET": new_secret()}), Snapshot(current))
    assert render(plan).splitlines() == [
        "  ~ change rep 'ada@example.com': capacity 10 → 12",
        "  ~ change rep 'bob@example.com': webhook_secret replaced",
        "  - delete account 'acme.com'",
        "Plan: 0 to create, 2 to change, 1 to delete.",
    ]


def test_an_id_matches_a_renamed_entry_and_reps_are_archived():
    url = "https://hooks.example.com/ada"
    ada = make_item("rep", {"email": "ada@old.example.com", "name": "Ada", "webhook_url": url}, ADA)
    carl = make_item(
        "rep", {"email": "carl@example.com", "name": "Carl", "webhook_url": url}, uuid.uuid4()
    )
    desired = items(DOCUMENT.replace("  - email: ada@example.com\n",
                                     f"  - email: ada@example.com\n    id: {ADA}\n"))  # fmt: skip
    plan = make_plan([i for i in desired if i.kind == "rep"], Snapshot([ada, carl]))
    lines = render(plan).splitlines()
    assert lines[0] == (
        "  ~ change rep 'ada@example.com': email \"ada@old.example.com\" → \"ada@example.com\"; "
        "capacity null → 10"
    )
    assert "  - archive rep 'carl@example.com'" in lines


def test_two_rows_with_the_same_name_need_an_id():
    twins = [
        make_item("rule", {"name": "DACH", "pool": "emea", "conditions": []}, uuid.uuid4())
        for _ in range(2)
    ]
    with pytest.raises(DocumentInvalid, match="2 rules in the database have name 'DACH'"):
        make_plan(items(DOCUMENT), Snapshot([*items(DOCUMENT)[:3], *twins]))


def test_export_leaves_defaults_out_and_reads_back_the_same(tmp_path):
    desired = items(DOCUMENT)
    text = dump(export_document(Snapshot(desired)))
    assert "timezone" not in text and "strategy" not in text
    path = write(tmp_path, text)
    assert not make_plan(_load(path), Snapshot(desired))


def test_crm_rows_name_their_line_and_column():
    reps = {ADA: "Ada@Example.com"}
    text = (
        "Account Name,Website,Owner Email\n"
        "Acme,https://www.acme.com/,ada@example.com\n"
        "Globex,globex,ada@example.com\n"
        "Initech,initech.com,zed@example.com\n"
        "Acme again,acme.com,ada@example.com\n"
    )
    with pytest.raises(DocumentInvalid) as caught:
        read_accounts(text, reps)
    assert [(p.line, p.loc, p.message) for p in caught.value.problems] == [
        (3, ("Website",), "'globex' is not a company domain like 'acme.com'"),
        (4, ("Owner Email",), "no rep with email 'zed@example.com'"),
        (5, ("Website",), "acme.com is also on line 2"),
    ]


def test_crm_rows_by_rep_id_merge_into_the_accounts():
    reps = {ADA: "ada@example.com"}
    rows = read_accounts(f"domain,owner_rep_id\nglobex.com,{ADA}\n", reps)
    current = items(DOCUMENT)
    merged = merge_accounts(current, rows, prune=False)
    assert render(make_plan(merged, Snapshot(current))).splitlines()[0] == (
        "  + create account 'globex.com'"
    )
    pruned = make_plan(merge_accounts(current, rows, prune=True), Snapshot(current))
    assert "  - delete account 'acme.com'" in render(pruned)


def test_a_csv_without_the_columns_says_which_it_needs():
    with pytest.raises(DocumentInvalid, match="needs a domain column"):
        read_accounts("name,owner\nAcme,Ada\n", {})


def test_the_documented_example_is_valid(tmp_path):
    """docs/routing.md's file and CSV, read as `baton routing` reads them."""
    page = Path(__file__).parents[2] / "docs" / "routing.md"
    [example] = [b for b in code_blocks(page, "yaml") if b.startswith("version: 1")]
    env = {"BATON_REP_ADA_WEBHOOK_SECRET": new_secret()}
    desired = _file_items(write(tmp_path, example), env)
    assert {i.kind for i in desired} == {"rep", "pool", "rule", "account", "nurture_track"}
    [csv] = code_blocks(page, "csv")
    reps = {i.id or uuid.uuid4(): str(i.fields["email"]) for i in desired if i.kind == "rep"}
    assert [a.domain for a in read_accounts(csv, reps)] == ["acme.com", "globex.com"]


def _load(path: Path) -> list[Item]:
    return _file_items(path, {"BOB_SECRET": SECRET})
