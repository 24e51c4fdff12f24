"""One-click links: a rep acts on an assignment from a message, without a bearer token.

A link's token names the assignment, the rep, the action and an expiry, signed with
HMAC-SHA256 under ``BATON_ROUTER_LINK_SECRET``: ``<payload>.<signature>``, both
base64url. :meth:`LinkSigner.sign` makes one; :meth:`LinkSigner.verify` refuses a
malformed, tampered or expired one. That a link is used once and still names the rep's
current assignment is the store's to check (``store/one_click.py``). Pure: ``now`` is
passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class LinkAction(StrEnum):
    """What a link does, and the activity kind it records."""

    ACCEPT = "accept"
    REJECT = "reject"
    CONTACTED = "contacted"

    @property
    def activity_kind(self) -> str:
        return {"accept": "accepted", "reject": "rejected", "contacted": "contacted"}[self.value]


class LinkRefused(Exception):
    """A link that must change nothing; ``status`` is the HTTP status the page gets."""

    status = 400
    title = "This link is not valid"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class MalformedLink(LinkRefused):
    status, title = 400, "This link is not valid"


class TamperedLink(LinkRefused):
    status, title = 403, "This link has been altered"


class ExpiredLink(LinkRefused):
    status, title = 410, "This link has expired"


class UsedLink(LinkRefused):
    status, title = 410, "This link was already used"


class ForeignLink(LinkRefused):
    status, title = 409, "This lead is no longer yours to act on"


@dataclass(frozen=True)
class LinkClaim:
    """What a verified token says."""

    assignment_id: uuid.UUID
    rep_id: uuid.UUID
    action: LinkAction
    expires_at: datetime
    token_id: str  # the signature's SHA-256: what the used-link table keys on


@dataclass(frozen=True)
class LinkSigner:
    """Signs and verifies tokens; ``base_url`` is where reps reach the router."""

    secret: str
    ttl: timedelta
    base_url: str

    def sign(
        self, assignment_id: uuid.UUID, rep_id: uuid.UUID, action: LinkAction, now: datetime
    ) -> str:
        expires = int((now + self.ttl).timestamp())
        payload = f"{assignment_id.hex}.{rep_id.hex}.{action.value}.{expires}".encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def url(
        self, assignment_id: uuid.UUID, rep_id: uuid.UUID, action: LinkAction, now: datetime
    ) -> str:
        return f"{self.base_url}/links/{self.sign(assignment_id, rep_id, action, now)}"

    def links(self, assignment_id: uuid.UUID, rep_id: uuid.UUID, now: datetime) -> dict[str, str]:
        """Every action's link for one assignment, and when they expire."""
        out = {a.value: self.url(assignment_id, rep_id, a, now) for a in LinkAction}
        expires = datetime.fromtimestamp(int((now + self.ttl).timestamp()), UTC)
        return out | {"expires_at": expires.isoformat()}

    def verify(self, token: str, now: datetime) -> LinkClaim:
        """The token's claim; :class:`MalformedLink`, :class:`TamperedLink` or
        :class:`ExpiredLink` otherwise (the signature is checked before anything else is
        believed)."""
        if len(token) > 400 or token.count(".") != 1:
            raise MalformedLink("the link is cut short or is not a Baton link")
        encoded, signature = token.split(".")
        try:
            payload, mac = _unb64(encoded), _unb64(signature)
        except ValueError:
            raise MalformedLink("the link is cut short or is not a Baton link") from None
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise TamperedLink("the link's signature does not match what it says")
        try:
            assignment, rep, action, expires = payload.decode().split(".")
            claim = LinkClaim(
                assignment_id=uuid.UUID(hex=assignment),
                rep_id=uuid.UUID(hex=rep),
                action=LinkAction(action),
                expires_at=datetime.fromtimestamp(int(expires), UTC),
                token_id=hashlib.sha256(mac).hexdigest(),
            )
        except ValueError:  # signed by this secret, so only a format change gets here
            raise MalformedLink("the link is not one this router understands") from None
        if now >= claim.expires_at:
            raise ExpiredLink(f"the link expired at {claim.expires_at.isoformat()}")
        return claim

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.secret.encode(), b"baton-link-v1." + payload, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or not text.isascii():
        raise ValueError("empty or not ASCII")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from None
