"""The router's tables. The schema is created and changed only by migrations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, MetaData, String, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql import func


class Base(DeclarativeBase):
    metadata = MetaData(schema="router")


class Rep(Base):
    __tablename__ = "reps"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    webhook_url: Mapped[str] = mapped_column(Text)
    webhook_secret: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="online")
    webhook_disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RoutedTransition(Base):
    """Every transition consumed, keyed by its id: re-delivery finds it and does nothing."""

    __tablename__ = "routed_transitions"

    transition_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(256), index=True)
    to_stage: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # assigned | queued | ignored
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class AssignmentRow(Base):
    __tablename__ = "assignments"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    transition_id: Mapped[str] = mapped_column(
        ForeignKey("router.routed_transitions.transition_id"), unique=True
    )
    lead_id: Mapped[str] = mapped_column(String(256), index=True)
    rep_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("router.reps.id"), index=True)
    strategy: Mapped[str] = mapped_column(String(32))
    express: Mapped[bool] = mapped_column(Boolean, default=False)
    qualified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutboxRow(Base):
    """A side effect to deliver after the transaction that decided it committed."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # webhook | kafka
    message_id: Mapped[str] = mapped_column(String(80), unique=True)
    rep_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("router.reps.id"))
    topic: Mapped[str | None] = mapped_column(String(255))
    key: Mapped[str | None] = mapped_column(String(256))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
