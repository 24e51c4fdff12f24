"""The router's HTTP API: one module of routes per resource (``routes/``), their bodies
(``models/``), and the typed dependencies that authenticate callers and hand routes
the stores and actions they use (``deps.py``)."""

from __future__ import annotations

from fastapi import APIRouter

from baton_router.api.routes import (
    accounts,
    leads,
    links,
    nurture_tracks,
    pools,
    reps,
    rules,
    webhooks,
)


def api_router() -> APIRouter:
    """Every ``/v1`` route and the one-click link pages, in one router for the app."""
    router = APIRouter()
    for module in (reps, pools, rules, accounts, nurture_tracks, webhooks, leads, links):
        router.include_router(module.router)
    return router
