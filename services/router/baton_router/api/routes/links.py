"""``/links/{token}``: a rep's one-click link from an assignment message, no bearer token.

``GET`` only shows a confirmation page (link scanners and mail prefetchers open links;
they must not act); its form ``POST``s to the same URL, which spends the link and
records the activity through ``RouterActions.follow_link``, as the API's activity
endpoint does. A reject asks for a disposition code (``baton_shared.dispositions``) and
an optional note. A malformed (400), tampered (403), foreign (409), used or expired (410)
link gets a page saying so and changes nothing. Browser pages, not JSON: kept out of
the OpenAPI document.
"""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from baton_router.actions import KafkaUnavailable
from baton_router.api.deps import ActionsDep, ServiceDep
from baton_router.links import LinkAction, LinkClaim, LinkRefused
from baton_shared.clock import utcnow
from baton_shared.dispositions import DEFAULT_DISPOSITIONS, Disposition

router = APIRouter(include_in_schema=False)

NOTE_MAX = 500
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}
VERBS = {LinkAction.ACCEPT: "Accept", LinkAction.REJECT: "Reject",
         LinkAction.CONTACTED: "Mark as contacted"}  # fmt: skip
DONE = {LinkAction.ACCEPT: "accepted", LinkAction.REJECT: "rejected",
        LinkAction.CONTACTED: "marked as contacted"}  # fmt: skip


@router.get("/links/{token}", response_class=HTMLResponse)
async def confirm(token: str, service: ServiceDep) -> HTMLResponse:
    """The confirmation page: what the link will do, and a button that does it."""
    try:
        claim = service.settings.link_signer.verify(token, utcnow())
        row = await service.stores.one_click.check(claim)
    except LinkRefused as refused:
        return refusal(refused)
    return page(200, f"{VERBS[claim.action]} lead {row.lead_id}?", _form(claim))


@router.post("/links/{token}", response_class=HTMLResponse)
async def act(
    token: str, request: Request, service: ServiceDep, actions: ActionsDep
) -> HTMLResponse:
    """Spend the link: record the activity once."""
    try:
        claim = service.settings.link_signer.verify(token, utcnow())
    except LinkRefused as refused:
        return refusal(refused)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    disposition = None
    if claim.action == LinkAction.REJECT:
        chosen = (form.get("disposition") or [""])[0]
        if chosen not in Disposition.__members__.values():
            return page(400, "Choose a reason", _form(claim, "Choose why you reject the lead."))
        disposition = Disposition(chosen)
    note = ((form.get("note") or [""])[0].strip()[:NOTE_MAX]) or None
    try:
        activity = await actions.follow_link(claim, disposition, note)
    except LinkRefused as refused:
        return refusal(refused)
    except KafkaUnavailable:
        body = "<p>Nothing was recorded; the link still works. Try again in a minute.</p>"
        return page(503, "Please try again", body, {"Retry-After": "5"})
    done = f"Lead {activity.lead_id} {DONE[claim.action]}"
    if disposition is not None:
        done += f" ({disposition.label.lower()})"
    return page(200, done, "<p>Recorded. You can close this page.</p>")


def refusal(refused: LinkRefused) -> HTMLResponse:
    body = f"<p>{escape(refused.detail)}. Nothing was changed.</p>"
    return page(refused.status, refused.title, body)


def page(status: int, title: str, body: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    """A small self-contained HTML page (no scripts, no external resources)."""
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{escape(title)} · Baton</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;"
        "padding:0 1rem}button{font-size:1rem;padding:.5rem 1rem}label{display:block;"
        "margin:.75rem 0 .25rem}select,input{font-size:1rem;width:100%}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS | (headers or {}))


def _form(claim: LinkClaim, hint: str = "") -> str:
    fields = f"<p>{escape(hint)}</p>" if hint else ""
    if claim.action == LinkAction.REJECT:
        options = "".join(
            f'<option value="{d.value}">{escape(d.label)}</option>' for d in DEFAULT_DISPOSITIONS
        )
        fields += (
            '<label for="disposition">Reason</label>'
            '<select id="disposition" name="disposition" required>'
            f'<option value="">Choose…</option>{options}</select>'
            f'<label for="note">Note (optional)</label>'
            f'<input id="note" name="note" maxlength="{NOTE_MAX}">'
        )
    expires = claim.expires_at.isoformat(timespec="minutes")
    return (
        f'<form method="post">{fields}<p><button type="submit">{VERBS[claim.action]}</button>'
        f"</p></form><p><small>This link works once, until {expires}.</small></p>"
    )
