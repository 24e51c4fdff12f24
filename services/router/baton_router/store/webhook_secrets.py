"""Rotating a rep's or nurture track's webhook signing secret, sealed at rest.

:meth:`WebhookSecretStore.rotate` opens the stored value under a row lock, makes the
new secret current and keeps the old one signing for the grace period (both signatures
go out meanwhile), and seals the result back (``secret_box.py``).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_router.secret_box import SecretBox, SigningSecrets
from baton_router.store.configuration import NotFound
from baton_router.tables import NurtureTrack, Rep

OWNERS: dict[str, type[Rep] | type[NurtureTrack]] = {"rep": Rep, "nurture track": NurtureTrack}


class WebhookSecretStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], box: SecretBox):
        self._sessions, self._box = sessions, box

    async def rotate(
        self, owner: str, owner_id: uuid.UUID, new: str, now: datetime, grace: timedelta
    ) -> SigningSecrets:
        """``new`` signs from now on; the secret it replaces also signs for ``grace``.
        ``owner``: ``"rep"`` or ``"nurture track"``; :class:`NotFound` if there is none."""
        async with self._sessions.begin() as session:
            row = await session.get(OWNERS[owner], owner_id, with_for_update=True)
            if row is None or getattr(row, "archived_at", None) is not None:
                raise NotFound(owner, owner_id)
            secrets = self._box.open(row.webhook_secret).rotated(new, now, grace)
            row.webhook_secret = self._box.seal(secrets)
            return secrets
