"""One scoring step: records in, transitions and states to save out. Pure: no I/O, no clock.

The scorer's stream shell (:mod:`baton_scorer.stream`) and ``baton replay``
(``baton_analytics.replay``) both run their records through these functions, so the
stream and a replay cannot drift apart:

* :func:`score_batch` — a batch of the worker's inputs as raw values: each is decoded
  (or becomes a dead letter); a rep's action goes through :func:`rep_action`; an event
  through :func:`score` — unless it is anonymous and fresh from ``leads.events``, when
  it is handed back to be stitched first.
* :func:`stitch_batch` / :func:`stitch_event` — anonymous events against their aliases
  (:mod:`baton_scorer.identity`): the events to score now, re-keyed to their lead.
* :func:`fire_timers` — recycle the leads whose cold timer is due at ``now``.
* with an :class:`Identity`, :func:`score_batch` also merges known leads
  (:mod:`baton_scorer.handoff`): it forwards the events and rep actions of a lead
  merged away, asks for the merges an alias or identify names, and hands over or
  absorbs lead states.

Lead states come from a lookup the caller passes (a cache over the table, a dict); the
step updates them in place and names the leads it touched, for the caller to save.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson
from pydantic import ValidationError

from baton_scorer import core, handoff
from baton_scorer.handoff import Link
from baton_scorer.identity import Alias, stitch
from baton_scorer.merge import merge_into
from baton_scorer.rules import Rules
from baton_shared.schemas import Activity, ActivityKind, LeadEvent, Transition, decode

# Rep actions that move a lead: a BANT confirmation (the qualification gate) and the
# outcomes (won, lost, rejected: :mod:`baton_scorer.outcomes`). Accepted and contacted
# are the router's and the SLA monitor's business.
REP_ACTIONS = frozenset(
    {ActivityKind.QUALIFIED, ActivityKind.REJECTED, ActivityKind.WON, ActivityKind.LOST}
)

# What makes a record undecodable or unscorable: it goes to the DLQ with the error.
RECORD_ERRORS = (ValidationError, ValueError, TypeError, KeyError)

StateLookup = Callable[[str], Any]
"""A lead id to its state (``core.LeadState``), created empty for a new lead."""
AliasLookup = Callable[[str], Alias]
"""An anonymous id to its :class:`~baton_scorer.identity.Alias`, created for a new one."""


@dataclass(slots=True)
class Identity:
    """What merging needs beyond the states: the caller's links (non-empty ones, kept
    for every lead loaded), a way to replace a lead's state, and the leads whose absorb
    was sent since the caller (re)started."""

    links: dict[str, Link]
    replace: Callable[[str, Any], None]
    sent: set[str] = field(default_factory=set)

    def link(self, lead_id: str) -> Link:
        link = self.links.get(lead_id)
        if link is None:
            link = self.links[lead_id] = Link()
        return link


class Source(Enum):
    """Where a record comes from, which decides what the step does with it."""

    EVENTS = "events"  # leads.events: an anonymous event is stitched first
    STITCHED = "stitched"  # released by stitching, keyed by its lead: scored as it is
    ACTIVITY = "activity"  # leads.activity: a rep's action


@dataclass(slots=True)
class Scored:
    """What :func:`score_batch` did; indexes point into the batch it was given."""

    transitions: list[Transition] = field(default_factory=list)
    touched: dict[str, None] = field(default_factory=dict)  # leads whose state to save
    to_stitch: list[tuple[int, str]] = field(default_factory=list)  # (index, anonymous id)
    dead_letters: list[tuple[int, str]] = field(default_factory=list)  # (index, error)
    # (key, value) for the stitched topic, in order, sent once the states are saved
    handoffs: list[tuple[str, bytes]] = field(default_factory=list)
    merges: int = 0
    # (merged id, survivor id, merge time) of each merge applied, for ``leads.merges``
    merged: list[tuple[str, str, float | None]] = field(default_factory=list)
    rep_actions: list[str] = field(default_factory=list)  # kinds applied
    scored: int = 0
    duplicates: int = 0
    newest_at: float | None = None  # the newest event time scored (epoch seconds)


@dataclass(slots=True)
class Stitched:
    """What :func:`stitch_batch` did; indexes point into the batch it was given."""

    released: list[LeadEvent] = field(default_factory=list)  # to score, re-keyed
    touched: dict[str, Alias] = field(default_factory=dict)  # aliases to save
    dead_letters: list[tuple[int, str]] = field(default_factory=list)  # (index, error)
    held: int = 0  # events held until an identify links their anonymous id


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def score(state: Any, event: LeadEvent, at: float, rules: Rules) -> list[Transition] | None:
    """Score ``event`` (at event time ``at``) into ``state`` in place: the transitions it
    causes, or None when its ``event_id`` was seen already (a duplicate changes nothing)."""
    if core.is_seen(state, event.event_id):
        return None
    return core.score_event(state, event, rules, at)[1]


def rep_action(states: StateLookup, activity: Activity, rules: Rules) -> list[Transition] | None:
    """Apply a rep's qualification (its ``bant`` and ``fields``) or outcome to the lead's state: its
    transitions, or None for any other activity (no state is looked up then)."""
    if activity.kind not in REP_ACTIONS:
        return None
    _, transitions = core.apply_rep_action(
        states(activity.lead_id),
        activity.lead_id,
        activity.activity_id,
        activity.kind.value,
        activity.occurred_at.timestamp(),
        rules,
        reason=activity.reason,
        bant=(*activity.bant, *activity.fields),
        disposition=activity.disposition,
    )
    return transitions


def fire_timers(
    lead_ids: Iterable[str], states: StateLookup, now: float, rules: Rules
) -> list[Transition]:
    """Fire the recycle timers of ``lead_ids`` that are due at event time ``now``, in
    order (a lead whose timer moved later only gets its exact due time)."""
    out: list[Transition] = []
    for lead_id in lead_ids:
        out += core.expire(states(lead_id), lead_id, now, rules)
    return out


def score_batch(
    records: Sequence[tuple[Source, bytes]],
    states: StateLookup,
    rules: Rules,
    identity: Identity | None = None,
) -> Scored:
    """Run a batch of raw records, in order, through the step (see the module doc)."""
    out = Scored()
    touched = out.touched
    links = identity.links if identity is not None else {}
    for index, (source, value) in enumerate(records):
        try:
            if source is Source.STITCHED and identity and value.startswith(handoff.PREFIX):
                out.transitions += apply_handoff(
                    handoff.decode(value), states, identity, rules, out
                )
                continue
            if source is Source.ACTIVITY:
                activity = decode(Activity, value)
                if identity and forward_activity(activity, value, states, identity, out):
                    continue
                transitions = rep_action(states, activity, rules)
                if transitions is None:
                    continue
                out.rep_actions.append(activity.kind.value)
                touched[activity.lead_id] = None
                out.transitions += transitions
                continue
            event = decode(LeadEvent, value)
            if source is Source.EVENTS and event.anonymous_id is not None:
                out.to_stitch.append((index, event.anonymous_id))
                continue
            at = event.occurred_at.timestamp()
            state = states(event.lead_id)
            link = links.get(event.lead_id)
            if link is not None and (link.merged_into is not None or link.away):
                assert identity is not None
                if link.waits():
                    link.held.append(value.decode())
                    touched[event.lead_id] = None
                else:
                    forward(event.lead_id, value.decode(), event.lead_id, link, identity, out)
                continue
            transitions = score(state, event, at, rules)
        except RECORD_ERRORS as exc:
            out.dead_letters.append((index, error_text(exc)))
            continue
        if identity is not None and event.type in handoff.MERGING_TYPES:
            # Asked again for a duplicate too: a crash may have kept the event's state
            # and lost the request (a repeated request is a no-op).
            other = handoff.merge_target(event)
            if other is not None and other not in identity.link(event.lead_id).merged_ids:
                out.handoffs.append((other, handoff.request(other, event.lead_id)))
        if transitions is None:
            out.duplicates += 1
            continue
        out.scored += 1
        if out.newest_at is None or at > out.newest_at:
            out.newest_at = at
        touched[event.lead_id] = None
        if transitions:
            out.transitions += transitions
    return out


def forward(
    origin: str, event: str, lead_id: str, link: Link, identity: Identity, out: Scored
) -> None:
    """Send an event (JSON) of ``origin`` on from ``lead_id``, merged away, after its absorb."""
    into = link.merged_into
    assert into is not None
    resend(lead_id, link, identity, out)
    out.handoffs.append((into, handoff.forwarded(origin, into, event)))


def forward_activity(
    activity: Activity, value: bytes, states: StateLookup, identity: Identity, out: Scored
) -> bool:
    """A rep's action keyed by a lead merged away goes on to the lead it is in now, after
    its absorb (as its events do). False: it is for this lead."""
    if activity.kind not in REP_ACTIONS:
        return False
    lead_id = activity.lead_id
    states(lead_id)  # loads its link
    link = identity.links.get(lead_id)
    into = link.merged_into if link is not None else None
    if link is None or into is None:
        return False
    resend(lead_id, link, identity, out)
    out.handoffs.append((into, handoff.forwarded_activity(lead_id, into, value.decode())))
    return True


def take_activity(
    body: dict[str, Any], states: StateLookup, identity: Identity, rules: Rules, out: Scored
) -> list[Transition]:
    """A rep's action forwarded from a lead merged away: on along this lead's link, or
    applied to this lead."""
    raw = body["activity"].encode()
    activity = decode(Activity, raw).model_copy(update={"lead_id": body["into"]})
    if forward_activity(activity, raw, states, identity, out):
        return []
    transitions = rep_action(states, activity, rules) or []
    out.rep_actions.append(activity.kind.value)
    out.touched[activity.lead_id] = None
    return transitions


def resend(lead_id: str, link: Link, identity: Identity, out: Scored) -> None:
    """The absorb of a lead merged away, once per (re)start: a crash may have lost it."""
    into = link.merged_into
    if into is not None and lead_id not in identity.sent and link.shipped is not None:
        out.handoffs.append(
            (into, handoff.absorb(lead_id, into, link.shipped, [lead_id], link.gen))
        )
        identity.sent.add(lead_id)


def apply_handoff(
    body: dict[str, Any], states: StateLookup, identity: Identity, rules: Rules, out: Scored
) -> list[Transition]:
    """A merge request (hand this lead over) or an absorb (take a lead in); the
    transitions an absorb causes (:mod:`baton_scorer.handoff` says who does what)."""
    absorbed, into = body["from"], body["into"]
    if body["kind"] == "event":
        return take_event(body, states, identity, rules, out)
    if body["kind"] == "activity":
        return take_activity(body, states, identity, rules, out)
    if body["kind"] == "request":
        state = states(absorbed)
        link = identity.link(absorbed)
        onward = link.merged_into
        if onward is not None:
            # Merged already: the lead it went into is merged instead (every id an alias or
            # identify links ends in one lead, whatever the order they come in).
            resend(absorbed, link, identity, out)
            if onward != into:
                out.handoffs.append((onward, handoff.request(onward, into)))
            return []
        if into == absorbed or into in link.merged_ids:
            return []  # a merge back into itself
        if link.waits():
            link.held.append(handoff.request(absorbed, into).decode())
            out.touched[absorbed] = None
            return []
        shipped = {"state": state.to_dict(), "merged_ids": link.merged_ids}
        # merged_ids stay: their histories are in what it shipped (a repeated absorb of
        # one of them is recognised even if its own history comes back to it)
        link.merged_into, link.away, link.shipped = into, True, shipped
        link.gen += 1
        identity.replace(absorbed, core.new_state())
        out.touched[absorbed] = None
        out.handoffs.append((into, handoff.absorb(absorbed, into, shipped, [absorbed], link.gen)))
        identity.sent.add(absorbed)
        held, link.held = link.held, []
        return rerun(held, states, identity, rules, out)  # they follow it, after the absorb
    state = states(into)
    link = identity.link(into)
    shipped, path = body["shipped"], list(body.get("path", ()))
    gen = body.get("gen", 0)
    if (absorbed == into and (not link.away or gen != link.gen)) or (
        absorbed != into and absorbed in link.merged_ids
    ):
        # Absorbed already (here, or in what this lead handed over): a repeated record
        # changes nothing. What it released then runs again (duplicates now), for the
        # requests a crash may have lost.
        return rerun(link.released, states, identity, rules, out)
    onward = handoff.next_hop(link, into, path)
    if onward is not None:
        out.handoffs.append((onward, handoff.absorb(absorbed, onward, shipped, [*path, into], gen)))
        return []
    if link.merged_into is not None:
        link.merged_into = None  # the smallest id on a cycle of links: the survivor
        out.touched[into] = None
    inner = shipped.get("merged_ids", ())
    merged, transitions = merge_into(state.to_dict(), into, shipped["state"], absorbed, rules)
    identity.replace(into, core.state_from_dict(merged, rules))
    ids = [absorbed, *inner]
    link.merged_ids = [
        *link.merged_ids,
        *(i for i in ids if i != into and i not in link.merged_ids),
    ]
    out.touched[into] = None
    out.merges += absorbed != into
    out.merged += [(i, into, merged.get("watermark")) for i in ids if i != into]
    if link.away and (absorbed == into or into in inner):
        # Its own history is back (alone, or inside a lead that had absorbed it).
        link.away, link.shipped = False, None
    if link.held and not link.waits():
        held, link.held = link.held, []
        transitions += rerun(held, states, identity, rules, out)
        again = set(link.held)
        link.released += [v for v in held if v not in again]
    return transitions


def take_event(
    body: dict[str, Any], states: StateLookup, identity: Identity, rules: Rules, out: Scored
) -> list[Transition]:
    """An event forwarded from a lead merged away: on along this lead's link, held until
    this lead has absorbed the lead it comes from, or scored as this lead's."""
    origin, lead_id = body["from"], body["into"]
    states(lead_id)
    link = identity.link(lead_id)
    if link.merged_into is not None:
        forward(origin, body["event"], lead_id, link, identity, out)
        return []
    if link.waits() or (origin != lead_id and origin not in link.merged_ids):
        link.held.append(orjson.dumps({"handoff": body}).decode())
        out.touched[lead_id] = None
        return []
    event = LeadEvent.model_validate_json(body["event"]).model_copy(update={"lead_id": lead_id})
    return rerun([event.to_bytes().decode()], states, identity, rules, out)


def rerun(
    values: list[str], states: StateLookup, identity: Identity, rules: Rules, out: Scored
) -> list[Transition]:
    """Run records (JSON text) keyed by their lead through :func:`score_batch` into ``out``."""
    if not values:
        return []
    again = score_batch([(Source.STITCHED, v.encode()) for v in values], states, rules, identity)
    out.handoffs += again.handoffs
    out.touched.update(again.touched)
    out.merges += again.merges
    out.merged += again.merged
    out.scored += again.scored
    out.duplicates += again.duplicates
    return again.transitions


def stitch_event(aliases: AliasLookup, event: LeadEvent) -> list[LeadEvent]:
    """The events to score now that ``event`` met its anonymous id's alias (in place)."""
    return stitch(aliases(event.anonymous_id or ""), event)


def stitch_batch(values: Sequence[bytes], aliases: AliasLookup) -> Stitched:
    """Stitch a batch of encoded anonymous events, in order."""
    out = Stitched()
    for index, value in enumerate(values):
        try:
            event = decode(LeadEvent, value)
            anonymous = event.anonymous_id or ""
            alias = aliases(anonymous)
            released = stitch(alias, event)
        except RECORD_ERRORS as exc:
            out.dead_letters.append((index, error_text(exc)))
            continue
        if not released:
            out.held += 1
        out.touched[anonymous] = alias
        out.released += released
    return out
