"""The SLA monitor's tables. The schema is created and changed only by migrations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ARRAY, Boolean, DateTime, Float, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql import func


class Base(DeclarativeBase):
    metadata = MetaData(schema="sla")


TS = DateTime(timezone=True)


class Clock(Base):
    """One SLA clock. ``measure`` says which delay it measures:

    * ``first_touch`` (rep delay): assignment → first touch, with the qualifying action
      → assignment delay (system delay) measured beside it; or, for an MQL no SDR task
      has followed yet, MQL transition → first touch (no rep, no assignment).
    * ``attempts`` (rep effort): assignment → the policy's minimum number of contact
      attempts (``attempts_required``; ``attempts_made`` counts the ``contacted``
      activities by the deadline). An assignment opens it beside its first-touch clock.
    * ``assign`` (system delay, in real time): qualifying transition → assignment; no
      rep or assignment (it is waiting for one). ``first_touch_at`` is when the
      assignment came.

    ``status``: ``open``, ``met``, ``breached``, ``reassigned`` (closed by a newer
    assignment of the same lead), ``superseded`` (an open transition-opened clock
    closed by a later transition of the lead) or ``cancelled`` (the lead was recycled
    or disqualified while the clock was open). ``next_fire_at`` is when the sweep must
    look at an open clock again (its next warning, else its deadline).
    """

    __tablename__ = "clocks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    measure: Mapped[str] = mapped_column(String(16), default="first_touch")
    transition_id: Mapped[str | None] = mapped_column(String(128), index=True)
    assignment_id: Mapped[str | None] = mapped_column(String(64))  # unique per measure
    lead_id: Mapped[str] = mapped_column(String(256), index=True)
    rep_id: Mapped[str | None] = mapped_column(String(64))
    team: Mapped[str | None] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(16), default="sql")
    express: Mapped[bool] = mapped_column(Boolean)
    policy_version: Mapped[str | None] = mapped_column(String(128))
    calendar: Mapped[str | None] = mapped_column(String(64))
    window_seconds: Mapped[float | None] = mapped_column(Float)
    qualified_at: Mapped[datetime] = mapped_column(TS)
    started_at: Mapped[datetime] = mapped_column(TS)
    deadline_at: Mapped[datetime] = mapped_column(TS)
    warn_ats: Mapped[list[datetime]] = mapped_column(ARRAY(TS), default=list)
    warn_fractions: Mapped[list[float]] = mapped_column(ARRAY(Float), default=list)
    warnings_sent: Mapped[int] = mapped_column(Integer, default=0)
    next_fire_at: Mapped[datetime | None] = mapped_column(TS)
    status: Mapped[str] = mapped_column(String(16))
    closed_at: Mapped[datetime | None] = mapped_column(TS)
    first_touch_at: Mapped[datetime | None] = mapped_column(TS)
    elapsed_seconds: Mapped[float | None] = mapped_column(Float)
    counted_seconds: Mapped[float | None] = mapped_column(Float)
    system_delay_seconds: Mapped[float | None] = mapped_column(Float)
    assign_target_seconds: Mapped[float | None] = mapped_column(Float)
    attempts_required: Mapped[int | None] = mapped_column(Integer)
    attempts_made: Mapped[int | None] = mapped_column(Integer)


class Touch(Base):
    """Every ``contacted`` activity seen, once (by activity id): a touch consumed before
    its assignment still stops the clock when the clock opens."""

    __tablename__ = "touches"

    activity_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(256))
    rep_id: Mapped[str | None] = mapped_column(String(64))
    assignment_id: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(TS)


class LeadAlias(Base):
    """A lead merged into another: its id means ``survivor_id`` from then on (0004)."""

    __tablename__ = "lead_aliases"

    merged_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    survivor_id: Mapped[str] = mapped_column(String(256), index=True)
    merged_at: Mapped[datetime] = mapped_column(TS, server_default=func.now())
