"""The data keys and the erasure record on the real PostgreSQL: a key is created once,
fetched by every process alike, and gone for good once destroyed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from baton_shared.privacy import ERASURE_STEPS, KeyStore, KeyStoreUnavailable, seal, unseal
from baton_shared.settings import DatabaseSettings
from tests.conftest import DatabaseFactory

pytestmark = pytest.mark.integration


def settings(url: str, cache_seconds: float = 60) -> DatabaseSettings:
    return DatabaseSettings(
        BATON_PRIVACY_KEY="a-master-key-for-tests-only",
        BATON_PRIVACY_KEY_CACHE_SECONDS=str(cache_seconds),
        DATABASE_URL=url,
    )


@pytest.fixture(scope="module")
def fresh_url(pg_cluster: DatabaseFactory) -> str:
    return pg_cluster.create_database(f"privacy_{uuid.uuid4().hex[:8]}")


@pytest.fixture
async def stores(fresh_url: str) -> AsyncIterator[list[KeyStore]]:
    """Three processes' stores, opened at once on a database without the schema."""
    opened = await asyncio.gather(*(KeyStore.open(settings(fresh_url)) for _ in range(3)))
    yield list(opened)
    for store in opened:
        await store.close()


def subjects(n: int) -> list[str]:
    return [f"p_{uuid.uuid4().hex}" for _ in range(n)]


async def test_concurrent_creators_get_one_key_per_subject(stores: list[KeyStore]) -> None:
    wanted = subjects(50)
    answers = await asyncio.gather(*(store.keys(wanted) for store in stores))
    assert all(set(a) == set(wanted) for a in answers)
    assert answers[0] == answers[1] == answers[2]
    assert len(set(answers[0].values())) == 50


async def test_a_destroyed_key_makes_its_records_unreadable_everywhere(
    stores: list[KeyStore], fresh_url: str
) -> None:
    writer, reader, _ = stores
    erased, kept = subjects(2)
    keys = await writer.keys([erased, kept])
    tokens = {s: seal(keys[s], s, {"email": f"{s}@example.com"}) for s in (erased, kept)}
    assert await reader.keys([erased, kept], create=False) == keys

    assert await writer.destroy([erased]) == 1
    assert await writer.destroy([erased]) == 0
    assert await writer.keys([erased, kept], create=False) == {kept: keys[kept]}
    # A process started afterwards (nothing cached) cannot open it either.
    late = await KeyStore.open(settings(fresh_url))
    try:
        found = await late.keys([erased, kept], create=False)
        assert unseal(found.get(erased), tokens[erased]) is None
        assert unseal(found[kept], tokens[kept]) == {"email": f"{kept}@example.com"}
        # New data of the same subject gets a new key, which opens none of the old.
        renewed = await late.keys([erased])
        assert unseal(renewed[erased], tokens[erased]) is None
    finally:
        await late.close()


async def test_a_batch_of_cached_keys_needs_no_database(fresh_url: str) -> None:
    store = await KeyStore.open(settings(fresh_url))
    wanted = subjects(20)
    keys = await store.keys(wanted)
    await store.close()  # any query now fails
    assert await store.keys(wanted) == keys
    with pytest.raises(KeyStoreUnavailable):
        await store.keys(subjects(1))


async def test_a_cached_key_is_used_no_longer_than_the_cache_bound(fresh_url: str) -> None:
    writer = await KeyStore.open(settings(fresh_url))
    reader = await KeyStore.open(settings(fresh_url, cache_seconds=0))
    try:
        (subject,) = subjects(1)
        await writer.keys([subject])
        assert subject in await reader.keys([subject], create=False)
        await writer.destroy([subject])
        assert await reader.keys([subject], create=False) == {}
    finally:
        await writer.close()
        await reader.close()


async def test_an_erasure_is_recorded_and_completes_with_its_last_step(
    stores: list[KeyStore],
) -> None:
    store = stores[0]
    record = await store.record_erasure(subjects(2), "dpo@example.com")
    assert record.steps == {} and not record.complete
    assert await store.erasure(record.erasure_id) == record
    for step in ERASURE_STEPS[:-1]:
        partial = await store.finish_step(record.erasure_id, step)
        assert partial is not None and not partial.complete
    done = await store.finish_step(record.erasure_id, ERASURE_STEPS[-1])
    assert done is not None and done.complete and set(done.steps) == set(ERASURE_STEPS)
    again = await store.finish_step(record.erasure_id, ERASURE_STEPS[0])
    assert again == done  # finishing twice changes nothing
    assert await store.erasure(str(uuid.uuid4())) is None
    assert await store.erasure("not-a-uuid") is None
