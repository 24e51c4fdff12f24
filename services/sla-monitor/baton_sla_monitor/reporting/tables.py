"""The reporting store's table: one row per lead, the columns of
:class:`baton_shared.conversion.Journey`. Created and changed only by the reporting
migrations (their own chain, version table ``alembic_version_sla_reporting``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ARRAY, DateTime, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = MetaData(schema="reporting")


TS = DateTime(timezone=True)


class JourneyRow(Base):
    """A lead's journey; ``merged_into`` set means its facts are its survivor's."""

    __tablename__ = "journeys"

    lead_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    merged_into: Mapped[str | None] = mapped_column(String(256))
    entered_at: Mapped[datetime | None] = mapped_column(TS, index=True)
    mql_at: Mapped[datetime | None] = mapped_column(TS, index=True)
    sql_at: Mapped[datetime | None] = mapped_column(TS)
    accepted_at: Mapped[datetime | None] = mapped_column(TS)
    rejected_at: Mapped[datetime | None] = mapped_column(TS)
    rejected_code: Mapped[str | None] = mapped_column(String(64))
    rejected_id: Mapped[str | None] = mapped_column(String(128))
    lost_at: Mapped[datetime | None] = mapped_column(TS)
    lost_code: Mapped[str | None] = mapped_column(String(64))
    lost_id: Mapped[str | None] = mapped_column(String(128))
    won_at: Mapped[datetime | None] = mapped_column(TS)
    attributed_at: Mapped[datetime | None] = mapped_column(TS)
    attributed_id: Mapped[str | None] = mapped_column(String(128))
    rules_version: Mapped[str | None] = mapped_column(String(128))
    industry: Mapped[str | None] = mapped_column(String(128))
    segment: Mapped[str | None] = mapped_column(String(64))
    touch_at: Mapped[datetime | None] = mapped_column(TS)
    touch_id: Mapped[str | None] = mapped_column(String(256))
    source: Mapped[str | None] = mapped_column(String(256))
    campaign: Mapped[str | None] = mapped_column(String(256))
    assigned_at: Mapped[datetime | None] = mapped_column(TS)
    assignment_id: Mapped[str | None] = mapped_column(String(64))
    pool: Mapped[str | None] = mapped_column(String(64))
    rep_id: Mapped[str | None] = mapped_column(String(64))
    contacted_ats: Mapped[list[datetime]] = mapped_column(ARRAY(TS), default=list)
    met_clocks: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)
    breached_clocks: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)
