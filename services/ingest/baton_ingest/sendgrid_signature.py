"""SendGrid's Signed Event Webhook: ECDSA (P-256, SHA-256) over timestamp + raw body.

A signature whose timestamp is further than ``max_age_seconds`` from now (either way)
is refused, so a captured request cannot be replayed later."""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


class SignatureVerifier:
    """Verifies with the public key from SendGrid's Mail Settings (base64 DER)."""

    def __init__(self, public_key_b64: str, max_age_seconds: float = 300):
        key = load_der_public_key(base64.b64decode(public_key_b64))
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("SendGrid verification key must be an ECDSA public key")
        self._key, self._max_age_s = key, max_age_seconds

    def verify(
        self, signature_b64: str | None, timestamp: str | None, body: bytes, now: float
    ) -> bool:
        """Whether the signature holds and ``timestamp`` (Unix seconds) is recent."""
        if not signature_b64 or not timestamp:
            return False
        try:
            if abs(now - int(timestamp)) > self._max_age_s:
                return False
            signature = base64.b64decode(signature_b64, validate=True)
            self._key.verify(signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True
