"""Standard Webhooks signatures, checked against the reference `standardwebhooks` library."""

from __future__ import annotations

import base64
import json
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from baton_router.signing import SECRET_PREFIX, new_secret, sign, signed_headers

BODY = json.dumps({"lead_id": "lead-1", "rep_id": "rep-9", "express": True}).encode()


def headers_now(secret: str, body: bytes = BODY, message_id: str = "msg_1") -> dict[str, str]:
    return signed_headers(secret, message_id, int(time.time()), body)


def test_signature_verifies_with_the_reference_library() -> None:
    secret = new_secret()
    assert Webhook(secret).verify(BODY, headers_now(secret)) == json.loads(BODY)


def test_non_ascii_body_verifies() -> None:
    secret = new_secret()
    body = json.dumps({"name": "Zoë Ångström — 東京"}, ensure_ascii=False).encode()
    assert Webhook(secret).verify(body, headers_now(secret, body)) == json.loads(body)


def test_tampered_body_fails_verification() -> None:
    secret = new_secret()
    headers = headers_now(secret)
    tampered = BODY.replace(b"rep-9", b"rep-6")
    assert tampered != BODY
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)


def test_tampered_message_id_or_timestamp_fails_verification() -> None:
    secret = new_secret()
    headers = headers_now(secret)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "msg_2"})
    with pytest.raises(WebhookVerificationError):
        shifted = str(int(headers["webhook-timestamp"]) - 1)
        Webhook(secret).verify(BODY, {**headers, "webhook-timestamp": shifted})


def test_another_secret_does_not_verify() -> None:
    headers = headers_now(new_secret())
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_headers_carry_id_timestamp_and_json_content_type() -> None:
    secret = new_secret()
    headers = signed_headers(secret, "msg_7", 1_700_000_000, BODY)
    assert headers["webhook-id"] == "msg_7"
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["webhook-signature"] == sign(secret, "msg_7", 1_700_000_000, BODY)
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["content-type"] == "application/json"


def test_new_secret_is_whsec_prefixed_random_32_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert SECRET_PREFIX == "whsec_"
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert len({new_secret() for _ in range(20)}) == 20
