"""The Store contract, task attributes: the CloudEvents context a submission carries is kept on
its task and read back by `get_task` as given (None for a task without one), whether the id was
given or generated; a taken id keeps the first submission's attributes."""

from __future__ import annotations

import pytest

from asyncfn.domain.models import Submission
from asyncfn.store.base import Store

T0 = 1_700_000_000.0
TENANT = "acme"
FN = "sink"
ATTRIBUTES = {
    "specversion": "1.0",
    "id": "evt-1",
    "source": "/orders",
    "type": "com.example.order.created",
    "time": "2030-01-02T03:04:05Z",
    "traceparent": "00-ünïcode-01",
}

pytestmark = pytest.mark.timeout(15)


async def test_attributes_round_trip_on_given_and_generated_ids(store: Store) -> None:
    other = {"specversion": "1.0", "id": "evt-2", "source": "/s", "type": "t"}
    given, plain, generated, again = await store.submit_many(
        TENANT,
        FN,
        [
            Submission(b"{}", task_id="ce-1", attributes=ATTRIBUTES),
            Submission(b"x", task_id="t-2"),
            Submission(b"y", attributes=other),
            Submission(b"z", task_id="ce-1", attributes=other),
        ],
        T0,
        3,
        0,
    )
    assert (given.created, again.created, again.task_id) == (True, False, "ce-1")

    first = await store.get_task(TENANT, "ce-1")
    assert first is not None and first.attributes == ATTRIBUTES
    without = await store.get_task(TENANT, plain.task_id)
    assert without is not None and without.attributes is None
    made = await store.get_task(TENANT, generated.task_id)
    assert made is not None and made.attributes == other
