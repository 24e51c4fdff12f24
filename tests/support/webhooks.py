"""Webhooks in tests: the next signed delivery to a local receiver, or none at all."""

from __future__ import annotations

import asyncio
import queue

from baton_devstack.webhook_sink import Delivery, WebhookReceiver


async def next_delivery(receiver: WebhookReceiver, timeout: float = 15.0) -> Delivery:
    try:
        return await asyncio.to_thread(receiver.deliveries.get, timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no webhook delivery within {timeout} s") from None


async def no_delivery(receiver: WebhookReceiver, within: float) -> None:
    try:
        extra = await asyncio.to_thread(receiver.deliveries.get, timeout=within)
    except queue.Empty:
        return
    raise AssertionError(
        f"unexpected webhook delivery to {extra.path} ({extra.headers.get('webhook-id')})"
    )
