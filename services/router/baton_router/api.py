"""The router's HTTP API.

Two kinds of caller, both ``Authorization: Bearer ...``:
- the **admin token** (``BATON_ADMIN_TOKEN``): configuration — reps, pools, routing
  rules, accounts, nurture tracks, the webhook dead-letter list and replay — and
  everything a rep can do, for any rep;
- a **rep token** (``POST /v1/reps/{id}/token``): that rep's own profile, availability
  and leads, and activity (accepted / rejected / contacted / qualified with BANT fields /
  won / lost) on leads assigned to them.
  Anything else is a 403 (another rep's lead: 404, so ids do not leak).

Activity is published to ``leads.activity`` and answered 202 once Kafka acknowledged.
"""

import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from baton_router.api_models import (
    AccountIn,
    AccountOut,
    ActivityAccepted,
    ActivityIn,
    AssignmentOut,
    Availability,
    DeadLetterOut,
    PoolIn,
    PoolOut,
    PoolPatch,
    RepCreated,
    RepIn,
    RepOut,
    RepPatch,
    RepToken,
    RuleIn,
    RuleOut,
    RulePatch,
    TrackCreated,
    TrackIn,
    TrackOut,
    check_domain,
)
from baton_router.config_store import InvalidReference
from baton_router.service import RouterService
from baton_router.signing import new_secret
from baton_router.tables import AssignmentRow, NurtureTrack, Pool, Rep, RoutingRule
from baton_shared.clock import utcnow
from baton_shared.ids import stable_id
from baton_shared.schemas import Activity

bearer = HTTPBearer(auto_error=False)
REP_TOKEN_PREFIX = "rtok_"
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown bearer token"},
    403: {"description": "A rep token asking for admin or another rep's data"},
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin (``rep_id`` None) or one rep."""

    rep_id: uuid.UUID | None

    @property
    def is_admin(self) -> bool:
        return self.rep_id is None


def rep_out(rep: Rep, open_leads: int | None = None) -> dict[str, Any]:
    return {
        "id": rep.id,
        "name": rep.name,
        "email": rep.email,
        "webhook_url": rep.webhook_url,
        "status": rep.status,
        "created_at": rep.created_at or utcnow(),
        "timezone": rep.timezone or "UTC",
        "working_hours": rep.working_hours,
        "out_of_office": rep.out_of_office or [],
        "capacity": rep.capacity,
        "weight": rep.weight or 1,
        "skills": rep.skills or {},
        "webhook_disabled_at": rep.webhook_disabled_at,
        "open_leads": open_leads,
    }


def pool_out(pool: Pool, members: list[uuid.UUID]) -> PoolOut:
    return PoolOut(
        id=pool.id,
        name=pool.name,
        strategy=pool.strategy,  # type: ignore[arg-type]
        express=pool.express,
        members=members,
        escalation=pool.escalation,
        manager_rep_id=pool.manager_rep_id,
        max_reassignments=pool.max_reassignments,
    )


def rule_out(rule: RoutingRule) -> RuleOut:
    return RuleOut(
        id=rule.id,
        name=rule.name,
        position=rule.position,
        conditions=rule.conditions,
        pool_id=rule.pool_id,
        enabled=rule.enabled,
    )


def track_out(track: NurtureTrack) -> dict[str, Any]:
    return {
        "id": track.id,
        "name": track.name,
        "position": track.position,
        "conditions": track.conditions,
        "webhook_url": track.webhook_url,
        "sdr_pool_id": track.sdr_pool_id,
    }


def assignment_out(row: AssignmentRow) -> AssignmentOut:
    return AssignmentOut(
        assignment_id=row.id,
        lead_id=row.lead_id,
        rep_id=row.rep_id,
        transition_id=row.transition_id,
        strategy=row.strategy,
        express=row.express,
        status=row.status,
        qualified_at=row.qualified_at,
        assigned_at=row.assigned_at,
        sla_due_at=row.sla_due_at,
        reassignments=row.reassignments,
        stage=row.stage or "sql",
    )


def profile_changes(body: Any) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True, mode="json")
    for key in ("name", "email", "webhook_url", "status", "timezone", "weight", "skills"):
        if key in changes and changes[key] is None:
            raise InvalidReference((key,), "may not be null")
    return changes


def api_routes(service: RouterService, admin_token: str) -> APIRouter:
    config = service.config

    async def principal(
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if creds is not None:
            if hmac.compare_digest(creds.credentials.encode(), admin_token.encode()):
                return Principal(None)
            if creds.credentials.startswith(REP_TOKEN_PREFIX):
                rep = await config.rep_for_token(creds.credentials)
                if rep is not None:
                    return Principal(rep.id)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "send 'Authorization: Bearer <BATON_ADMIN_TOKEN>' or a rep token (rtok_...)",
            headers={"WWW-Authenticate": "Bearer"},
        )

    Caller = Annotated[Principal, Depends(principal)]

    def admin(who: Caller) -> Principal:
        if not who.is_admin:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs the admin token")
        return who

    Admin = Annotated[Principal, Depends(admin)]

    def self_or_admin(who: Principal, rep_id: uuid.UUID) -> None:
        if not who.is_admin and who.rep_id != rep_id:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "a rep token sees only its own rep")

    RepId = Annotated[uuid.UUID, Path(description="Rep id")]
    router = APIRouter(prefix="/v1", responses=ERRORS)

    # -- reps --------------------------------------------------------------------------

    @router.post("/reps", status_code=201, response_model=RepCreated, tags=["reps"])
    async def create_rep(body: RepIn, _: Admin) -> dict[str, Any]:
        profile = body.model_dump(exclude_unset=True, exclude_none=True, mode="json")
        for key in ("name", "email", "webhook_url"):
            profile.pop(key, None)
        rep = await service.create_rep(
            body.name, body.email, str(body.webhook_url), new_secret(), **profile
        )
        return {**rep_out(rep), "webhook_secret": rep.webhook_secret}

    @router.get("/reps", response_model=list[RepOut], tags=["reps"])
    async def list_reps(_: Admin) -> list[dict[str, Any]]:
        loads = await service.store.rep_loads()
        return [rep_out(r, loads.get(r.id, 0)) for r in await service.store.list_reps()]

    @router.get("/reps/{rep_id}", response_model=RepOut, tags=["reps"])
    async def get_rep(rep_id: RepId, who: Caller) -> dict[str, Any]:
        self_or_admin(who, rep_id)
        loads = await service.store.rep_loads()
        return rep_out(await config.get_rep(rep_id), loads.get(rep_id, 0))

    @router.patch("/reps/{rep_id}", response_model=RepOut, tags=["reps"])
    async def update_rep(rep_id: RepId, body: RepPatch, _: Admin) -> dict[str, Any]:
        rep = await service.update_rep(rep_id, profile_changes(body))
        return rep_out(rep)

    @router.put("/reps/{rep_id}/availability", response_model=RepOut, tags=["reps"])
    async def set_availability(rep_id: RepId, body: Availability, who: Caller) -> dict[str, Any]:
        """Status (online / away / offline) and out-of-office ranges; the rep may set
        their own. Going online drains the queue at once."""
        self_or_admin(who, rep_id)
        return rep_out(await service.update_rep(rep_id, profile_changes(body)))

    @router.delete("/reps/{rep_id}", status_code=204, tags=["reps"])
    async def archive_rep(rep_id: RepId, _: Admin) -> Response:
        await config.archive_rep(rep_id, utcnow())
        return Response(status_code=204)

    @router.post("/reps/{rep_id}/token", status_code=201, response_model=RepToken, tags=["reps"])
    async def issue_token(rep_id: RepId, _: Admin) -> RepToken:
        """A new bearer token for this rep (the previous one stops working)."""
        token = REP_TOKEN_PREFIX + secrets.token_urlsafe(32)
        await config.set_token(rep_id, token)
        return RepToken(rep_id=rep_id, token=token)

    @router.get("/reps/{rep_id}/leads", response_model=list[AssignmentOut], tags=["reps"])
    async def rep_leads(rep_id: RepId, who: Caller) -> list[AssignmentOut]:
        self_or_admin(who, rep_id)
        await config.get_rep(rep_id)
        return [assignment_out(a) for a in await config.leads_of(rep_id)]

    @router.get("/me", response_model=RepOut, tags=["reps"])
    async def me(who: Caller) -> dict[str, Any]:
        if who.rep_id is None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "/v1/me needs a rep token")
        loads = await service.store.rep_loads()
        return rep_out(await config.get_rep(who.rep_id), loads.get(who.rep_id, 0))

    # -- pools, rules, accounts, tracks ------------------------------------------------

    @router.post("/pools", status_code=201, response_model=PoolOut, tags=["routing"])
    async def create_pool(body: PoolIn, _: Admin) -> PoolOut:
        fields = body.model_dump(exclude={"members"})
        fields["strategy"] = body.strategy.value
        pool = await config.create_pool(fields, body.members)
        await service.configuration_changed()
        return pool_out(pool, list(dict.fromkeys(body.members)))

    @router.get("/pools", response_model=list[PoolOut], tags=["routing"])
    async def list_pools(_: Admin) -> list[PoolOut]:
        return [pool_out(p, m) for p, m in await config.list_pools()]

    @router.get("/pools/{pool_id}", response_model=PoolOut, tags=["routing"])
    async def get_pool(pool_id: uuid.UUID, _: Admin) -> PoolOut:
        return pool_out(*await config.get_pool(pool_id))

    @router.patch("/pools/{pool_id}", response_model=PoolOut, tags=["routing"])
    async def update_pool(pool_id: uuid.UUID, body: PoolPatch, _: Admin) -> PoolOut:
        fields = body.model_dump(exclude_unset=True, exclude={"members"})
        for key in ("name", "strategy", "express", "escalation", "max_reassignments"):
            if key in fields and fields[key] is None:
                raise InvalidReference((key,), "may not be null")
        if "strategy" in fields:
            fields["strategy"] = fields["strategy"].value
        members = body.members if "members" in body.model_fields_set else None
        await config.update_pool(pool_id, fields, members)
        await service.configuration_changed()
        return pool_out(*await config.get_pool(pool_id))

    @router.delete("/pools/{pool_id}", status_code=204, tags=["routing"])
    async def delete_pool(pool_id: uuid.UUID, _: Admin) -> Response:
        """Deletes the pool and the rules that point at it."""
        await config.delete_pool(pool_id)
        return Response(status_code=204)

    @router.post("/rules", status_code=201, response_model=RuleOut, tags=["routing"])
    async def create_rule(body: RuleIn, _: Admin) -> RuleOut:
        rule = await config.create_rule(body.model_dump(mode="json") | {"pool_id": body.pool_id})
        await service.configuration_changed()
        return rule_out(rule)

    @router.get("/rules", response_model=list[RuleOut], tags=["routing"])
    async def list_rules(_: Admin) -> list[RuleOut]:
        return [rule_out(r) for r in await config.list_rules()]

    @router.get("/rules/{rule_id}", response_model=RuleOut, tags=["routing"])
    async def get_rule(rule_id: uuid.UUID, _: Admin) -> RuleOut:
        return rule_out(await config.get_rule(rule_id))

    @router.patch("/rules/{rule_id}", response_model=RuleOut, tags=["routing"])
    async def update_rule(rule_id: uuid.UUID, body: RulePatch, _: Admin) -> RuleOut:
        fields = body.model_dump(exclude_unset=True, mode="json")
        for key, value in fields.items():
            if value is None:
                raise InvalidReference((key,), "may not be null")
        if "pool_id" in fields:
            fields["pool_id"] = body.pool_id
        rule = await config.update_rule(rule_id, fields)
        await service.configuration_changed()
        return rule_out(rule)

    @router.delete("/rules/{rule_id}", status_code=204, tags=["routing"])
    async def delete_rule(rule_id: uuid.UUID, _: Admin) -> Response:
        await config.delete_rule(rule_id)
        return Response(status_code=204)

    @router.put("/accounts/{domain}", response_model=AccountOut, tags=["routing"])
    async def put_account(domain: str, body: AccountIn, _: Admin) -> AccountOut:
        """Leads from ``domain`` (their email's or company's) go to this rep first."""
        try:
            clean = check_domain(domain)
        except ValueError as exc:
            raise InvalidReference(("path", "domain"), str(exc)) from None
        account = await config.put_account(clean, body.rep_id)
        return AccountOut(domain=account.domain, rep_id=account.rep_id)

    @router.get("/accounts", response_model=list[AccountOut], tags=["routing"])
    async def list_accounts(_: Admin) -> list[AccountOut]:
        return [AccountOut(domain=a.domain, rep_id=a.rep_id) for a in await config.list_accounts()]

    @router.delete("/accounts/{domain}", status_code=204, tags=["routing"])
    async def delete_account(domain: str, _: Admin) -> Response:
        await config.delete_account(domain.strip().lower())
        return Response(status_code=204)

    @router.post("/nurture-tracks", status_code=201, response_model=TrackCreated, tags=["routing"])
    async def create_track(body: TrackIn, _: Admin) -> dict[str, Any]:
        """Where MQLs are enrolled: the first track whose conditions match gets a signed
        ``lead.nurture`` webhook; with ``sdr_pool_id``, an SDR of that pool also gets a
        ``lead.sdr_task`` (queued until one is available)."""
        fields = body.model_dump(mode="json") | {"sdr_pool_id": body.sdr_pool_id}
        track = await config.create_track(fields | {"webhook_secret": new_secret()})
        return {**track_out(track), "webhook_secret": track.webhook_secret}

    @router.get("/nurture-tracks", response_model=list[TrackOut], tags=["routing"])
    async def list_tracks(_: Admin) -> list[dict[str, Any]]:
        return [track_out(t) for t in await config.list_tracks()]

    @router.delete("/nurture-tracks/{track_id}", status_code=204, tags=["routing"])
    async def delete_track(track_id: uuid.UUID, _: Admin) -> Response:
        await config.delete_track(track_id)
        return Response(status_code=204)

    # -- webhook dead letters ----------------------------------------------------------

    @router.get("/webhooks/dead", response_model=list[DeadLetterOut], tags=["webhooks"])
    async def dead_letters(_: Admin) -> list[DeadLetterOut]:
        """Outbox messages that exhausted their retries (or hit a 410), newest first."""
        return [
            DeadLetterOut(
                id=row.id,
                kind=row.kind,
                message_id=row.message_id,
                rep_id=row.rep_id,
                target=row.target_url or row.topic,
                attempts=row.attempts,
                last_error=row.last_error,
                created_at=row.created_at,
            )
            for row in await service.store.dead_letters()
        ]

    @router.post("/webhooks/dead/{message_id}/replay", status_code=202, tags=["webhooks"])
    async def replay(message_id: int, _: Admin) -> dict[str, Any]:
        """Deliver a dead message again, with a fresh retry schedule."""
        row = await service.replay(message_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dead message {message_id}")
        return {"id": row.id, "message_id": row.message_id, "status": "pending"}

    # -- leads -------------------------------------------------------------------------

    @router.get("/leads/{lead_id}/assignments", response_model=list[AssignmentOut], tags=["leads"])
    async def lead_assignments(lead_id: str, who: Caller) -> list[AssignmentOut]:
        rows = await config.assignments_for_lead(lead_id)
        if not who.is_admin:
            rows = [r for r in rows if r.rep_id == who.rep_id]
            if not rows:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no lead {lead_id} of yours")
        return [assignment_out(r) for r in rows]

    @router.post(
        "/leads/{lead_id}/activity",
        status_code=202,
        response_model=ActivityAccepted,
        responses={503: {"description": "Kafka unavailable; retry"}},
        tags=["leads"],
    )
    async def record_activity(lead_id: str, body: ActivityIn, who: Caller) -> ActivityAccepted:
        current = await service.store.current_assignment(lead_id)
        if who.is_admin:
            rep_id = body.rep_id or (current.rep_id if current else None)
        else:
            if body.rep_id is not None and body.rep_id != who.rep_id:
                raise HTTPException(status.HTTP_403_FORBIDDEN, "a rep acts only as itself")
            mine = [a for a in await config.assignments_for_lead(lead_id) if a.rep_id == who.rep_id]
            if not mine:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no lead {lead_id} of yours")
            rep_id, current = who.rep_id, mine[-1]
        occurred_at = body.occurred_at or utcnow()
        assignment_id = body.assignment_id or (current.id if current else None)
        activity = Activity(
            activity_id=body.activity_id
            or stable_id(lead_id, body.kind.value, occurred_at.isoformat()),
            lead_id=lead_id,
            rep_id=str(rep_id) if rep_id else None,
            kind=body.kind,
            reason=body.reason,
            occurred_at=occurred_at,
            assignment_id=str(assignment_id) if assignment_id else None,
            bant=body.bant,
        )
        await service.publish_activity(activity)
        await service.activity_recorded(lead_id, rep_id, body.kind.value)
        return ActivityAccepted(activity_id=activity.activity_id, lead_id=lead_id, kind=body.kind)

    return router
