"""Webhook targets checked when they are registered: a ``webhook_url`` or
``slack_webhook_url`` the target policy refuses (see ``webhook_targets.py``) is a 422
naming the field, before anything is stored."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from pydantic import BaseModel

from baton_router.api.deps import ServiceDep
from baton_router.webhook_targets import CheckedResolver
from baton_shared.problems import FieldProblem, ProblemError

URL_FIELDS = ("webhook_url", "slack_webhook_url")


class TargetCheck:
    def __init__(self, resolver: CheckedResolver):
        self._resolver = resolver

    async def check(self, body: BaseModel) -> None:
        """Refuse the body's webhook URLs the policy refuses (422, each field named)."""
        errors = []
        for name in URL_FIELDS:
            url = getattr(body, name, None)
            if url is None or name not in body.model_fields_set:
                continue
            why = await self._resolver.refusal_for_url(str(url))
            if why is not None:
                errors.append(FieldProblem(path=f"body.{name}", rule="unsafe_target", message=why))
        if errors:
            names = ", ".join(e.path for e in errors)
            detail = f"invalid request: {names}: {errors[0].message}"
            raise ProblemError(422, detail, kind="validation-error", errors=errors)


def get_target_check(service: ServiceDep) -> TargetCheck:
    return TargetCheck(service.targets)


TargetCheckDep = Annotated[TargetCheck, Depends(get_target_check)]
