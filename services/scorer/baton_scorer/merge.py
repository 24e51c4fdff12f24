"""Two leads' stored states made one: what one lead with both histories holds. Pure.

:func:`merge_states` works on the stored form (``to_dict``), so both scoring cores use
it. It is exact for everything scoring sums, by the linearity of decay:

* engagement per group and per signal: each side re-expressed at the later ``origin``
  and added — the same value at every time as one lead that scored both histories;
* capped rules: a window's entries are the union, the earliest (time, id) counting up
  to the cap again, and only the differences credited — as ``_add_capped`` would;
* ``watermark`` and ``last_engaged_at``: the later; BANT fields: the union;
* dedup: the union of both windows of event ids (the last ``DEDUP_WINDOW`` kept, the
  survivor's most recent last);
* traits: the absorbed lead's, overwritten by the survivor's (as if the absorbed
  lead's events came first); email: the survivor's, else the absorbed lead's; fit
  recomputed from them.

Stages are not sums: a lead's stage depends on the order its events arrived in, one
lead or two (``LATE_EVENT_LIMIT`` in the tests). The merged lead takes the further
stage of the two (new < mql < recycled < sql < disqualified < customer), then is decided at the
merged watermark as an event would decide it (:func:`merge_into`).
"""

from __future__ import annotations

from typing import Any

from baton_scorer.actions import expire
from baton_scorer.bounds import merge_traits
from baton_scorer.due import due_at
from baton_scorer.lifecycle import DEDUP_WINDOW
from baton_scorer.points import fit_points, is_competitor
from baton_scorer.rules import Rules
from baton_scorer.state import LeadState, engagement_from_dict
from baton_scorer.transitions import Trigger, decide, move
from baton_shared.schemas import ReasonKind, Stage, Transition

RANK = {
    Stage.NEW: 0,
    Stage.MQL: 1,
    Stage.RECYCLED: 2,
    Stage.SQL: 3,
    Stage.DISQUALIFIED: 4,
    Stage.CUSTOMER: 5,
}
TRIGGER = "merge"  # a merge transition's ``trigger_event``; its id is "merge:<absorbed id>"


def merge_states(
    survivor: dict[str, Any], absorbed: dict[str, Any], rules: Rules
) -> dict[str, Any]:
    """The stored state of one lead holding both leads' histories (module doc)."""
    groups_a, signals_a, origin_a = engagement_from_dict(survivor, rules)
    groups_b, signals_b, origin_b = engagement_from_dict(absorbed, rules)
    compiled = rules.compiled
    h0 = compiled.half_life
    known = compiled.rules
    origins = [o for o in (origin_a, origin_b) if o is not None]
    origin = max(origins) if origins else None

    def group_h(g: str) -> float:
        return compiled.group_half_life.get(g, h0)

    def signal_h(label: str) -> float:
        return known[label].half_life if label in known else h0

    groups: dict[str, float] = {}
    signals: dict[str, float] = {}
    for values, at, out, h in (
        (groups_a, origin_a, groups, group_h),
        (groups_b, origin_b, groups, group_h),
        (signals_a, origin_a, signals, signal_h),
        (signals_b, origin_b, signals, signal_h),
    ):
        for key, value in values.items():
            scaled = value if at == origin else value * 2.0 ** ((at - origin) / h(key))  # type: ignore[operator]
            out[key] = out.get(key, 0.0) + scaled

    capped = _merge_capped(survivor.get("capped", {}), absorbed.get("capped", {}))
    for label, windows in capped.items():
        rule = known.get(label)
        if rule is None or rule.cap_points is None:
            continue  # a label the rules no longer cap: its entries stay as they counted
        for entries in windows.values():
            entries.sort(key=lambda e: (e[0], e[1]))
            remaining = rule.cap_points
            kept = []
            for entry in entries:
                counted = min(rule.points, remaining)
                remaining -= counted
                if counted != entry[2]:
                    origin = entry[0] if origin is None else origin
                    credit = (counted - entry[2]) * 2.0 ** ((entry[0] - origin) / rule.half_life)
                    groups[rule.group] = groups.get(rule.group, 0.0) + credit
                    signals[label] = signals.get(label, 0.0) + credit
                    entry[2] = counted
                if counted > 0:
                    kept.append(entry)
            entries[:] = kept

    seen = list(dict.fromkeys([*absorbed["recent_event_ids"], *survivor["recent_event_ids"]]))
    traits = merge_traits(absorbed["traits"], survivor["traits"])
    email = survivor.get("email") or absorbed.get("email")
    a_wins = RANK[Stage(survivor["stage"])] >= RANK[Stage(absorbed["stage"])]
    staged = survivor if a_wins else absorbed
    return {
        "stage": staged["stage"],
        "fit": fit_points(traits, email, rules),
        "groups": groups,
        "signals": signals,
        "origin": origin,
        "capped": capped,
        "traits": traits,
        "email": email,
        "recent_event_ids": seen[-DEDUP_WINDOW:],
        "watermark": _latest(survivor.get("watermark"), absorbed.get("watermark")),
        "last_engaged_at": _latest(
            survivor.get("last_engaged_at"), absorbed.get("last_engaged_at")
        ),
        "stage_at": staged.get("stage_at"),
        "bant": sorted({*survivor.get("bant", ()), *absorbed.get("bant", ())}),
        "sql_ready": bool(survivor.get("sql_ready") or absorbed.get("sql_ready")),
        "hold_until": _latest(survivor.get("hold_until"), absorbed.get("hold_until")),
        "due": None,
    }


def merge_into(
    survivor: dict[str, Any],
    survivor_id: str,
    absorbed: dict[str, Any],
    absorbed_id: str,
    rules: Rules,
) -> tuple[dict[str, Any], list[Transition]]:
    """Merge ``absorbed`` into ``survivor`` (stored forms) and decide the merged lead's
    stage: the stored result and its transitions, each naming the merge in its reason."""
    merged = LeadState.from_dict(merge_states(survivor, absorbed, rules), rules)
    before = Stage(survivor["stage"])
    at = merged.watermark if merged.watermark is not None else 0.0
    trigger = Trigger(f"{TRIGGER}:{absorbed_id}", TRIGGER, at)
    out: list[Transition] = []
    taken = merged.stage
    if taken is not before:
        # The further stage came with the absorbed lead: the survivor moves to it.
        merged.stage = before
        reason = f"stage {taken.value} carried over"
        out.append(move(merged, survivor_id, taken, None, reason, trigger, rules, False))
    if merged.stage is Stage.SQL:
        merged.due = due_at(merged, rules)
        if merged.due is not None and merged.due <= at:
            out += expire(merged, survivor_id, at, rules)
    if merged.stage is not Stage.DISQUALIFIED and is_competitor(merged.email, rules):
        reason = "competitor email domain"
        out.append(
            move(
                merged,
                survivor_id,
                Stage.DISQUALIFIED,
                ReasonKind.DISQUALIFIED,
                reason,
                trigger,
                rules,
                False,
            )
        )
    elif merged.stage not in (Stage.SQL, Stage.DISQUALIFIED):
        out += decide(merged, survivor_id, trigger, None, rules, merged.score_at(at, rules))
    if merged.stage is Stage.SQL and merged.due is None:
        merged.due = due_at(merged, rules)
    note = f"lead {absorbed_id} merged into {survivor_id}"
    named = [t.model_copy(update={"reason": f"{note}: {t.reason}"}) for t in out]
    return merged.to_dict(), named


def _merge_capped(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, list[list[Any]]]]:
    out: dict[str, dict[str, list[list[Any]]]] = {}
    for side in (a, b):
        for label, windows in side.items():
            mine = out.setdefault(label, {})
            for key, entries in windows.items():
                have = mine.setdefault(key, [])
                ids = {e[1] for e in have}
                have += [list(e) for e in entries if e[1] not in ids]
    return out


def _latest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)
