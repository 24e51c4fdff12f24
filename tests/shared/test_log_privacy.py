"""No personal data in a log line: leads by a keyed hash, no email addresses, no bound
database values, and an access log naming routes, not paths or addresses."""

from __future__ import annotations

import io
import json
import logging
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from baton_shared.access_log import AccessLog
from baton_shared.database import make_engine
from baton_shared.log_privacy import lead_hash
from baton_shared.logs import configure_logging, get_logger
from baton_shared.settings import AdminSettings, ServiceSettings

log = get_logger("tests.shared.privacy")
EMAIL = "grace.hopper@example.com"


def lines_of(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_a_lead_is_named_by_its_keyed_hash_and_emails_never_appear(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging("INFO", "json", b"key-1")
    log.info("lead_transition", lead_id=EMAIL, to_stage="sql")
    log.warning("outbox_retry", error=f"ClientResponseError: 404, url='https://h/x/{EMAIL}'")
    (transition, retry) = lines_of(capsys)
    assert transition["lead_id"] == lead_hash(b"key-1", EMAIL)
    assert transition["lead_id"] != lead_hash(b"key-2", EMAIL)
    assert EMAIL not in json.dumps(retry) and "[email]" in retry["error"]


def test_database_errors_and_stdlib_tracebacks_lose_their_bound_values(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging("INFO", "json", b"key")
    error = (
        "(sqlalchemy.dialects.postgresql.asyncpg.IntegrityError) <class 'UniqueViolationError'>: "
        'duplicate key value violates unique constraint "leads_pkey"\n'
        "DETAIL:  Key (lead_id)=(ada-42) already exists.\n"
        "[SQL: INSERT INTO leads (lead_id) VALUES ($1)]\n"
        "[parameters: ('ada-42',)]\n"
        "(Background on this error at: https://sqlalche.me/e/20/gkpj)"
    )
    log.error("sweep_failed", error=error)
    try:
        raise KeyError(f"no lead {EMAIL}")
    except KeyError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    text = capsys.readouterr().err
    assert "ada-42" not in text and EMAIL not in text
    assert "INSERT INTO leads" in text and "KeyError" in text  # still says what failed


def test_the_hash_key_is_shared_by_services_with_one_admin_token(clean_env) -> None:
    token = {"BATON_ADMIN_TOKEN": "a-shared-admin-token-0123"}
    one, two = AdminSettings(**token), AdminSettings(**token)  # type: ignore[arg-type]
    assert one.log_hash_key == two.log_hash_key
    assert one.log_hash_key != token["BATON_ADMIN_TOKEN"].encode()  # derived, not the token
    explicit = ServiceSettings(BATON_LOG_HASH_KEY="operator-key")  # type: ignore[call-arg]
    assert explicit.log_hash_key == b"operator-key"


async def test_the_access_log_names_the_route_not_the_path_or_the_client(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging("INFO", "json", b"key")
    app = FastAPI()

    @app.get("/v1/leads/{lead_id}/clocks")
    async def clocks(lead_id: str) -> dict[str, str]:
        return {}

    transport = httpx.ASGITransport(app=AccessLog(app), client=("198.51.100.23", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get(f"/v1/leads/{EMAIL}/clocks?email={EMAIL}")).status_code == 200
        assert (await client.get(f"/nothing/{EMAIL}")).status_code == 404
    found, missing = [line for line in lines_of(capsys) if line["logger"] == "baton.access"]
    assert found["route"] == "/v1/leads/{lead_id}/clocks" and found["status"] == 200
    assert missing["route"] == "-" and missing["status"] == 404
    assert "198.51.100.23" not in json.dumps([found, missing])
    assert "grace" not in json.dumps([found, missing])


def test_a_handler_installed_later_writes_scrubbed_records_too(restore_logging: None) -> None:
    configure_logging("INFO", "json", b"key")
    written = io.StringIO()
    foreign = logging.StreamHandler(written)  # as faust's worker replaces the root handler
    foreign.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logging.getLogger().handlers[:] = [foreign]
    try:
        raise ValueError(f"bad lead {EMAIL}")
    except ValueError:
        logging.getLogger("faust.agents").exception("Agent crashed on %r", EMAIL)
    logging.getLogger("faust.worker").info("Worker ready at %s", "http://127.0.0.1:6066")
    text = written.getvalue()
    assert EMAIL not in text and "ValueError" in text and "Agent crashed" in text
    assert "Worker ready at http://127.0.0.1:6066" in text


@pytest.mark.integration
async def test_a_real_database_error_is_logged_without_its_bound_values(
    database_url: str, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging("INFO", "json", b"key")
    engine = make_engine(database_url, pool_size=1)
    value = {"lead": f"lead-{uuid.uuid4().hex}"}
    insert = text("INSERT INTO privacy_probe VALUES (:lead)")
    try:
        with pytest.raises(IntegrityError) as caught:
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TEMP TABLE privacy_probe (lead text PRIMARY KEY)"))
                await conn.execute(insert, value)
                await conn.execute(insert, value)  # duplicate key: PostgreSQL quotes it
    finally:
        await engine.dispose()
    log.error("store_failed", error=f"{type(caught.value).__name__}: {caught.value}")
    text_out = capsys.readouterr().err
    assert value["lead"] not in text_out
    assert "INSERT INTO privacy_probe" in text_out  # the statement, without its values
