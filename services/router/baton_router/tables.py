"""The router's tables. The schema is created and changed only by migrations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Sequence,
    String,
    Text,
)
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
    # 0002: availability, capacity, fairness, skills, per-rep token.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    working_hours: Mapped[dict[str, list[str]] | None] = mapped_column(JSONB)
    out_of_office: Mapped[list[dict[str, str]]] = mapped_column(JSONB, default=list)
    capacity: Mapped[int | None] = mapped_column(Integer)
    weight: Mapped[int] = mapped_column(Integer, default=1)
    skills: Mapped[dict[str, list[str]]] = mapped_column(JSONB, default=dict)
    last_turn: Mapped[int | None] = mapped_column(BigInteger)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # 0003: assignments with status 'open', maintained by every change of status.
    open_leads: Mapped[int] = mapped_column(Integer, default=0)
    # 0006: a Slack incoming webhook that receives the rep's assignments.
    slack_webhook_url: Mapped[str | None] = mapped_column(Text)


TURNS = Sequence("assignment_turn", metadata=Base.metadata)


class Pool(Base):
    """A team: members, the strategy that picks among them, and its escalation policy."""

    __tablename__ = "pools"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    strategy: Mapped[str] = mapped_column(String(16), default="round_robin")
    express: Mapped[bool] = mapped_column(Boolean, default=False)
    escalation: Mapped[str] = mapped_column(String(16), default="next_rep")
    manager_rep_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("router.reps.id", ondelete="SET NULL")
    )
    max_reassignments: Mapped[int] = mapped_column(Integer, default=2)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # 0006: the team's Slack incoming webhook, for members without their own.
    slack_webhook_url: Mapped[str | None] = mapped_column(Text)


class PoolMember(Base):
    __tablename__ = "pool_members"

    pool_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("router.pools.id", ondelete="CASCADE"), primary_key=True
    )
    rep_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("router.reps.id", ondelete="CASCADE"), primary_key=True
    )
    wrr_current: Mapped[float] = mapped_column(Float, default=0.0)


class RoutingRule(Base):
    __tablename__ = "routing_rules"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    pool_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("router.pools.id", ondelete="CASCADE"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Account(Base):
    """A company domain and the rep who owns it."""

    __tablename__ = "accounts"

    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    rep_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("router.reps.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class NurtureTrack(Base):
    """Where MQLs go: a marketing-automation endpoint, chosen by the first matching track."""

    __tablename__ = "nurture_tracks"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    position: Mapped[int] = mapped_column(Integer)
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    webhook_url: Mapped[str] = mapped_column(Text)
    webhook_secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # 0004: the pool an SDR task on the enrolled MQL goes to (None: no SDR task).
    sdr_pool_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("router.pools.id", ondelete="SET NULL")
    )


class RoutedTransition(Base):
    """Every transition consumed, keyed by its id: re-delivery finds it and does nothing."""

    __tablename__ = "routed_transitions"

    transition_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(256), index=True)
    to_stage: Mapped[str] = mapped_column(String(16))
    # assigned | queued | ignored | nurtured | sdr_queued (an MQL waiting for an SDR)
    status: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class AssignmentRow(Base):
    __tablename__ = "assignments"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    # Unique among first assignments (previous_assignment_id IS NULL); see migration 0002.
    transition_id: Mapped[str] = mapped_column(
        ForeignKey("router.routed_transitions.transition_id")
    )
    lead_id: Mapped[str] = mapped_column(String(256), index=True)
    rep_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("router.reps.id"), index=True)
    strategy: Mapped[str] = mapped_column(String(32))
    express: Mapped[bool] = mapped_column(Boolean, default=False)
    qualified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # 0002: open until contacted, rejected or taken back; open leads count against capacity.
    status: Mapped[str] = mapped_column(String(16), default="open")
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pool_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    turn: Mapped[int | None] = mapped_column(BigInteger)
    reassignments: Mapped[int] = mapped_column(Integer, default=0)
    previous_assignment_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    sla_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # 0004: sql (a rep works the lead) or mql (an SDR task).
    stage: Mapped[str] = mapped_column(String(8), default="sql", server_default="sql")


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
    # 0002: webhooks that do not go to a rep (nurture tracks, managers).
    target_url: Mapped[str | None] = mapped_column(Text)
    track_id: Mapped[uuid.UUID | None] = mapped_column(UUID)


class IdempotencyKey(Base):
    """The first successful response to a request sent with ``Idempotency-Key``."""

    __tablename__ = "idempotency_keys"

    caller: Mapped[str] = mapped_column(String(80), primary_key=True)  # admin | rep:<token hash>
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))  # method, path, query and body
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    media_type: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class UsedLinkRow(Base):
    """A one-click link that did what it says; the key makes a second use a no-op."""

    __tablename__ = "used_links"

    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    assignment_id: Mapped[uuid.UUID] = mapped_column(UUID, index=True)
    rep_id: Mapped[uuid.UUID] = mapped_column(UUID)
    action: Mapped[str] = mapped_column(String(16))
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LeadAlias(Base):
    """A lead merged into another: its id means ``survivor_id`` from then on (0007)."""

    __tablename__ = "lead_aliases"

    merged_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    survivor_id: Mapped[str] = mapped_column(String(256), index=True)
    merged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
