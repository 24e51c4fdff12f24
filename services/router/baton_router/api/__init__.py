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
    privacy,
    reps,
    rules,
    webhook_secrets,
    webhooks,
)


def api_router() -> APIRouter:
    """Every ``/v1`` route and the one-click link pages, in one router for the app."""
    router = APIRouter()
    modules = (
        *(reps, pools, rules, accounts, nurture_tracks, webhooks, webhook_secrets, leads),
        privacy,
    )
    for module in (*modules, links):
        router.include_router(module.router)
    return router
