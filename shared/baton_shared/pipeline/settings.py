"""The pipeline's tuning as fields of a service's settings: each service names its own
environment variables (``BATON_<SERVICE>_CONSUME_...``); bounds and meaning are these."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

ConsumeBatch = Annotated[
    int, Field(ge=1, le=5000, description="Records per consumer batch (one handler call)")
]
MaxAttempts = Annotated[
    int,
    Field(
        ge=1,
        le=100,
        description="Tries of a failing batch, then of each of its records, before the "
        "record that still fails goes to its DLQ (a database or broker outage is retried "
        "until it ends instead)",
    ),
]
BackoffSeconds = Annotated[
    float, Field(gt=0, description="Wait before the first retry of a failed batch; doubles")
]
MaxBackoffSeconds = Annotated[
    float, Field(gt=0, description="Longest wait between retries of a failed batch")
]
