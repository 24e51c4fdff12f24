"""Webhook signing secrets at rest and their rotation: PostgreSQL holds them sealed (never
in clear, plaintext rows are sealed by the migration); a rotated secret keeps signing
through its grace period — a receiver verifying with either the old or the new secret
accepts — and after it only the new one signs (the clock driven, no sleeps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

import baton_router.dispatcher
from baton_router.config import RouterSettings
from baton_router.secret_box import (
    SealedSecretUnreadable,
    SecretBox,
    SigningSecrets,
)
from baton_router.service import MIGRATIONS, VERSION_TABLE
from baton_router.signing import new_secret
from baton_shared.database import make_engine, migrate
from tests.router import test_router_api as base
from tests.router.test_router_api import Api, feed, next_delivery, transition

api = base.api
receiver = base.receiver
T0 = datetime(2026, 7, 7, 9, 0, tzinfo=UTC)


def test_the_old_secret_signs_only_until_its_grace_period_ends() -> None:
    old, new, newest = new_secret(), new_secret(), new_secret()
    rotated = SigningSecrets(old).rotated(new, T0, timedelta(hours=24))
    assert rotated.signing(T0) == (new, old)
    assert rotated.signing(T0 + timedelta(hours=23, minutes=59)) == (new, old)
    assert rotated.signing(T0 + timedelta(hours=24)) == (new,)
    again = rotated.rotated(newest, T0 + timedelta(hours=1), timedelta(hours=1))
    assert again.signing(T0 + timedelta(hours=1)) == (newest, new)  # the oldest is gone
    assert SigningSecrets(old).rotated(new, T0, timedelta(0)).signing(T0) == (new,)


def test_sealed_secrets_open_only_with_a_listed_key() -> None:
    secret = new_secret()
    first = SecretBox(("first-key-0123456789",))
    sealed = first.seal(SigningSecrets(secret, new_secret(), T0))
    assert secret not in sealed and secret.removeprefix("whsec_") not in sealed
    assert first.open(sealed).current == secret
    rotated_key = SecretBox(("second-key-0123456789", "first-key-0123456789"))
    assert rotated_key.open(sealed).current == secret  # the old key still opens
    with pytest.raises(SealedSecretUnreadable):
        SecretBox(("another-key-0123456789",)).open(sealed)


def test_production_refuses_the_local_key() -> None:
    production = {"BATON_ENV": "production", "BATON_ADMIN_TOKEN": "x" * 32,
                  "BATON_ROUTER_LINK_SECRET": "y" * 32, "BATON_PRIVACY_KEY": "p" * 32}  # fmt: skip
    with pytest.raises(ValidationError, match="BATON_ROUTER_SECRET_KEY"):
        RouterSettings(**production)
    keys = RouterSettings(**production, BATON_ROUTER_SECRET_KEY="k" * 32 + ", " + "j" * 32)
    assert keys.secret_key == ("k" * 32, "j" * 32)


@pytest.mark.integration
async def test_a_rotated_secret_signs_with_both_through_the_grace_period_then_only_the_new(
    api: Api, producer, receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    rep = await api.rep(receiver)
    old = rep["webhook_secret"]
    [(stored,)] = await api.query("SELECT webhook_secret FROM router.reps")
    assert old not in stored and old.removeprefix("whsec_") not in stored

    url = f"/v1/reps/{rep['id']}/webhook-secret"
    rotated = (await api.call("POST", url, json={"grace_seconds": 3600}, expect=200)).json()
    new = rotated["webhook_secret"]
    until = datetime.fromisoformat(rotated["previous_valid_until"])
    [(stored,)] = await api.query("SELECT webhook_secret FROM router.reps")
    assert not any(s in stored for s in (old, new, old[6:], new[6:]))

    await feed(api, producer, transition())
    during = await next_delivery(receiver)
    assert len(during.headers["webhook-signature"].split()) == 2
    for secret in (old, new):  # a receiver on either secret accepts
        Webhook(secret).verify(during.body, during.headers)

    later = until + timedelta(seconds=1)
    monkeypatch.setattr(baton_router.dispatcher, "utcnow", lambda: later)
    await feed(api, producer, transition())
    after = await next_delivery(receiver)
    Webhook(new).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)

    track = {"name": "t", "webhook_url": f"{receiver.url}/t"}
    made = (await api.call("POST", "/v1/nurture-tracks", json=track, expect=201)).json()
    [(sealed,)] = await api.query("SELECT webhook_secret FROM router.nurture_tracks")
    assert made["webhook_secret"][6:] not in sealed
    now = (
        await api.call("POST", f"/v1/nurture-tracks/{made['id']}/webhook-secret", expect=200)
    ).json()
    assert now["previous_valid_until"] is not None  # the default grace period
    missing = "/v1/reps/00000000-0000-0000-0000-000000000000/webhook-secret"
    await api.call("POST", missing, expect=404)

    # A created rep's answer, kept for Idempotency-Key retries, is kept sealed too.
    body = {"name": "Bob", "email": "bob@example.com", "webhook_url": f"{receiver.url}/bob"}
    key = {"Idempotency-Key": "create-bob", "Authorization": f"Bearer {base.ADMIN}"}
    first = await api.client.post("/v1/reps", json=body, headers=key)
    again = await api.client.post("/v1/reps", json=body, headers=key)
    secret = first.json()["webhook_secret"]
    assert again.json()["webhook_secret"] == secret and again.headers["idempotent-replayed"]
    [(kept,)] = await api.query("SELECT response_body FROM router.idempotency_keys")
    assert secret[6:].encode() not in kept and b"bob@example.com" not in kept


@pytest.mark.integration
async def test_the_migration_seals_secrets_stored_in_clear(db_url: str) -> None:
    engine = make_engine(db_url, pool_size=1)
    secret, box = new_secret(), SecretBox(("migration-key-0123456789",))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO router.reps (id, name, email, webhook_url, webhook_secret, "
                    "status, timezone, out_of_office, weight, skills) VALUES "
                    "(gen_random_uuid(), 'Ada', 'ada@example.com', 'http://x', :s, 'online', "
                    "'UTC', '[]', 1, '{}')"
                ),
                {"s": secret},
            )
            await conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0007'"))
        await migrate(engine, MIGRATIONS, VERSION_TABLE, secret_box=box)
        async with engine.connect() as conn:
            stored = (await conn.execute(text("SELECT webhook_secret FROM router.reps"))).scalar()
    finally:
        await engine.dispose()
    assert stored is not None and secret[6:] not in stored
    assert box.open(stored).current == secret
