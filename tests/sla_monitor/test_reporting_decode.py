"""What the reporting feed takes from a record: a fact, or nothing for a record that
says nothing to the report, or that does not decode or fit (counted, never a second
dead letter beside the one its topic's own consumer writes)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY

from baton_shared.schemas import (
    Activity,
    ActivityKind,
    EventType,
    LeadEvent,
    SlaEvent,
    SlaMeasure,
    SlaStatus,
)
from baton_sla_monitor.reporting.feed import decode_fact

AT = datetime(2026, 11, 2, 9, tzinfo=UTC)


def record(topic: str, value: bytes) -> ConsumerRecord:
    return ConsumerRecord(topic, 0, 0, 0, 0, b"k", value, None, 1, len(value), [])


def skipped(topic: str) -> float:
    labels = {"topic": topic}
    return REGISTRY.get_sample_value("baton_sla_reporting_skipped_total", labels) or 0.0


def event(**fields: object) -> LeadEvent:
    base = {"event_id": "e-1", "lead_id": "lead-1", "type": EventType.PAGE, "source": "segment"}
    return LeadEvent(**{**base, "occurred_at": AT, "received_at": AT, **fields})


def test_poison_is_counted_and_passed_over_not_dead_lettered() -> None:
    before = skipped("leads.transitions")
    assert decode_fact(record("p.leads.transitions", b'{"not": "a transition"}')) is None
    long_lead = Activity(activity_id="a", lead_id="l" * 300, kind=ActivityKind.WON, occurred_at=AT)
    assert decode_fact(record("p.leads.activity", long_lead.to_bytes())) is None
    assert skipped("leads.transitions") == before + 1


def test_events_count_only_with_a_utm_touch_or_an_anonymous_id_joined_to_a_lead() -> None:
    plain = event()
    utm = event(campaign={"source": "google", "name": "q4"})
    joined = event(anonymous_id="anon-1")
    own_browser = event(lead_id="anon-1", anonymous_id="anon-1")
    got = [
        decode_fact(record("leads.events", e.to_bytes())) for e in (plain, utm, joined, own_browser)
    ]
    assert got == [None, utm, joined, None]
    qualified = Activity(activity_id="q", lead_id="l", kind=ActivityKind.QUALIFIED, occurred_at=AT)
    assert decode_fact(record("leads.activity", qualified.to_bytes())) is None


def test_of_the_sla_events_only_a_reps_met_or_breached_clock_counts() -> None:
    def sla(status: SlaStatus, measure: SlaMeasure = SlaMeasure.FIRST_TOUCH) -> SlaEvent:
        return SlaEvent(
            event_id=f"{status}-{measure}",
            clock_id="c-1",
            lead_id="lead-1",
            assignment_id="a-1" if measure == SlaMeasure.FIRST_TOUCH else None,
            status=status,
            measure=measure,
            started_at=AT,
            deadline_at=AT,
            at=AT,
        )

    counted = [sla(SlaStatus.MET), sla(SlaStatus.BREACHED)]
    passed_over = [
        sla(SlaStatus.STARTED),
        sla(SlaStatus.AT_RISK),
        sla(SlaStatus.CANCELLED),
        sla(SlaStatus.BREACHED, SlaMeasure.ASSIGN),
    ]
    got = [decode_fact(record("p.leads.sla", e.to_bytes())) for e in counted + passed_over]
    assert got == [*counted, None, None, None, None]
