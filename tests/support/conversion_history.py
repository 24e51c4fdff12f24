"""A generated history whose true conversion the tests know: :func:`history` gives the
records of every topic and, counted from the plan that made them (never from the code
under test), the figures per source, campaign, industry, segment, pool, rules version
and speed-to-lead bucket.

Each source runs a plan (leads → SQL → accepted → won, with rejections and losses by
disposition code). Search leads arrive anonymously (their UTM page view is keyed by a
browser id an identify later joins to the lead); newsletter leads click an email; review
leads go straight to SQL on an express lane. Three leads entered a week before the
window and were won in it: no figure counts them. Won activities are sent twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from baton_shared.conversion import ConversionReport, Fact
from baton_shared.conversion.figures import GroupFigures
from baton_shared.schemas import (
    Activity,
    ActivityKind,
    Assignment,
    EventType,
    LeadEvent,
    SlaEvent,
    SlaMeasure,
    SlaStatus,
    Stage,
    Transition,
)

#: A week that ended three weeks ago: every outcome (at most 19 days after) is past.
SINCE = (datetime.now(UTC) - timedelta(days=30)).replace(hour=9, minute=0, second=0, microsecond=0)
UNTIL = SINCE + timedelta(days=7)
#: Contact delays after the SQL, by SQL index, and the bucket each lands in (None: never).
DELAYS = ((60, "under_5m"), (600, "5m_to_1h"), (7200, "1h_to_24h"), (200_000, "over_24h"))
COUNTS = ("leads", "mql", "sql", "accepted", "rejected", "won", "lost")


@dataclass(frozen=True)
class Plan:
    source: str
    campaign: str
    industry: str
    employees: int
    segment: str
    pool: str
    rules_version: str
    leads: int
    sql: int
    accepted: int
    won: int
    rejected: int  # of the SQLs not accepted
    lost: int  # of the accepted not won
    express: bool = False  # straight to SQL, no MQL


PLANS = (
    Plan("google", "q4-search", "software", 50, "smb", "inbound", "rules@v1", 20, 10, 6, 3, 2, 1),
    Plan("newsletter", "nov-news", "retail", 500, "mid_market", "inbound", "rules@v2",
         12, 3, 3, 1, 0, 2),
    Plan("g2", "reviews", "finance", 5000, "enterprise", "enterprise", "rules@v2",
         5, 5, 4, 2, 1, 1, express=True),
)  # fmt: skip


@dataclass
class History:
    records: list[Fact] = field(default_factory=list)
    #: dimension → key → count name → count
    truth: dict[str, dict[str | None, Counter[str]]] = field(default_factory=dict)

    def count(self, keys: dict[str, str | None], *names: str) -> None:
        for dimension, key in keys.items():
            self.truth.setdefault(dimension, {}).setdefault(key, Counter()).update(names)


def history() -> History:
    h = History()
    n = 0
    for plan in PLANS:
        for i in range(plan.leads):
            _lead(h, plan, i, SINCE + timedelta(minutes=10 * n), f"{plan.source}-{i}")
            n += 1
    for i in range(3):  # before the window: in no figure
        early = PLANS[0]
        lead = f"early-{i}"
        at = SINCE - timedelta(days=7)
        h.records += [
            _transition(lead, Stage.MQL, at, early),
            _transition(lead, Stage.SQL, at, early),
        ]
        h.records.append(_activity(lead, ActivityKind.WON, SINCE + timedelta(days=1)))
    return h


def _lead(h: History, plan: Plan, i: int, at: datetime, lead: str) -> None:
    keys: dict[str, str | None] = {
        "all": None,
        "source": plan.source,
        "campaign": plan.campaign,
        "industry": plan.industry,
        "segment": plan.segment,
        "rules_version": plan.rules_version,
        "pool": None,  # until assigned
        "speed_to_lead": None,
        "rep": None,
    }
    h.records += _touch(plan, lead, at, anonymous=plan.source == "google")
    reached = ["leads"]
    sql_at = at + timedelta(hours=1)
    if not plan.express:
        h.records.append(_transition(lead, Stage.MQL, at, plan))
        reached.append("mql")
    if i < plan.sql:
        reached += ["sql"] if plan.express else ["sql", "mql_then_sql"]
        h.records.append(_transition(lead, Stage.SQL, sql_at, plan))
        rep = keys["rep"] = f"{plan.pool}-rep-{i % 2}"
        keys["pool"] = plan.pool
        h.records.append(_assignment(lead, rep, plan.pool, sql_at))
        h.records.append(_sla(lead, sql_at, breached=i % 3 == 0))
        if i < len(DELAYS):
            delay, keys["speed_to_lead"] = DELAYS[i]
            h.records.append(
                _activity(lead, ActivityKind.CONTACTED, sql_at + timedelta(seconds=delay))
            )
        else:
            keys["speed_to_lead"] = "not_contacted"
        reached += _outcome(h, plan, i, lead, sql_at)
    h.count(keys, *reached)


def _outcome(h: History, plan: Plan, i: int, lead: str, sql_at: datetime) -> list[str]:
    day = timedelta(days=1)
    if i < plan.accepted:
        h.records.append(_activity(lead, ActivityKind.ACCEPTED, sql_at + day))
        if i < plan.won:
            won = _activity(lead, ActivityKind.WON, sql_at + 11 * day)
            h.records += [won, won]  # re-delivered
            return ["accepted", "won"]
        if i < plan.won + plan.lost:
            h.records.append(_activity(lead, ActivityKind.LOST, sql_at + 12 * day, "competitor"))
            return ["accepted", "lost"]
        return ["accepted"]
    if i < plan.accepted + plan.rejected:
        h.records.append(_activity(lead, ActivityKind.REJECTED, sql_at + day, "no_budget"))
        return ["rejected"]
    return []


def _touch(plan: Plan, lead: str, at: datetime, anonymous: bool) -> list[Fact]:
    browser = f"anon-{lead}"
    utm = LeadEvent(
        event_id=f"utm-{lead}",
        lead_id=browser if anonymous else lead,
        anonymous_id=browser if anonymous else None,
        type=EventType.PAGE if anonymous else EventType.TRACK,
        name="Pricing" if anonymous else "Email Link Clicked",
        occurred_at=at - timedelta(minutes=5),
        received_at=at - timedelta(minutes=5),
        source="segment" if anonymous else "email",
        campaign={"source": plan.source, "name": plan.campaign, "medium": "cpc"},
    )
    if not anonymous:
        return [utm]
    identify = LeadEvent(
        event_id=f"identify-{lead}",
        lead_id=lead,
        anonymous_id=browser,
        type=EventType.IDENTIFY,
        occurred_at=at - timedelta(minutes=1),
        received_at=at - timedelta(minutes=1),
        source="segment",
    )
    return [utm, identify]


def _transition(lead: str, stage: Stage, at: datetime, plan: Plan) -> Transition:
    return Transition(
        transition_id=f"t-{lead}-{stage.value}",
        lead_id=lead,
        from_stage=Stage.NEW if stage == Stage.MQL else Stage.MQL,
        to_stage=stage,
        score=120,
        fit=40,
        engagement=80,
        reason="generated",
        express=plan.express,
        trigger_event_id=f"e-{lead}-{stage.value}",
        occurred_at=at,
        rules_version=plan.rules_version,
        traits={"industry": plan.industry.title(), "company": {"employees": plan.employees}},
    )


def _assignment(lead: str, rep: str, pool: str, sql_at: datetime) -> Assignment:
    return Assignment(
        assignment_id=f"a-{lead}",
        transition_id=f"t-{lead}-sql",
        lead_id=lead,
        rep_id=rep,
        strategy="round_robin",
        qualified_at=sql_at,
        assigned_at=sql_at + timedelta(seconds=1),
        pool=pool,
    )


def _activity(
    lead: str, kind: ActivityKind, at: datetime, disposition: str | None = None
) -> Activity:
    return Activity(
        activity_id=f"{kind.value}-{lead}",
        lead_id=lead,
        kind=kind,
        occurred_at=at,
        disposition=disposition,
    )


def _sla(lead: str, sql_at: datetime, breached: bool) -> SlaEvent:
    status = SlaStatus.BREACHED if breached else SlaStatus.MET
    return SlaEvent(
        event_id=f"sla-{lead}",
        clock_id=f"clock-{lead}",
        lead_id=lead,
        assignment_id=f"a-{lead}",
        status=status,
        measure=SlaMeasure.FIRST_TOUCH,
        started_at=sql_at,
        deadline_at=sql_at + timedelta(hours=1),
        at=sql_at + timedelta(hours=1),
    )


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def assert_true_figures(report: ConversionReport, truth: dict) -> None:
    """Each group of the report against the plan's counts (:mod:`conversion_history`)."""
    groups: dict[str | None, GroupFigures] = {g.key: g for g in report.groups}
    assert set(groups) == set(truth), report.by
    for key, want in truth.items():
        got = groups[key]
        assert {c: getattr(got, c) for c in COUNTS} == {c: want[c] for c in COUNTS}, (
            report.by,
            key,
        )
        assert got.mql_to_sql_rate == rate(want["mql_then_sql"], want["mql"])
        assert got.sql_to_accepted_rate == rate(want["accepted"], want["sql"])
        assert got.accepted_to_won_rate == rate(want["won"], want["accepted"])
        assert got.sql_to_won_rate == rate(want["won"], want["sql"])
        assert got.sql_acceptance_rate == rate(
            want["accepted"], want["accepted"] + want["rejected"]
        )
