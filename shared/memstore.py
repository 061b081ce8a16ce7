"""An event store in memory, for handlers' unit tests: the same contract as the PostgreSQL one (the same tests
pass against both, tests/integration/test_store_contract.py), without a database.

A connection is not needed: pass None where a handler takes one. Appends are all or nothing, positions increase,
a taken (stream, version) raises ConcurrencyError; there are no transactions to roll back, and no read models
run unless `project` is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.errors import ConcurrencyError
from shared.events import EventRegistry
from shared.store import Pending, Recorded, Stream, StreamStore


class InMemoryEventStore(StreamStore):
    def __init__(self, registry: EventRegistry) -> None:
        self.registry = registry
        self.log: list[Recorded] = []  # every event appended, in position order
        self._streams: dict[str, list[Recorded]] = {}

    async def load_many(self, conn: Any, stream_ids: Sequence[str]) -> dict[str, Stream]:  # noqa: ARG002
        return {stream_id: Stream(stream_id, list(self._streams.get(stream_id, []))) for stream_id in stream_ids}

    async def _write(
        self,
        conn: Any,  # noqa: ARG002 - nothing to connect to
        rows: Sequence[Pending],
        data_json: list[str],  # noqa: ARG002 - the serialised forms are for PostgreSQL
        meta_json: list[str],  # noqa: ARG002
        keys: list[str],  # noqa: ARG002
        now: datetime,
    ) -> int:
        versions = {stream_id: len(self._streams.get(stream_id, [])) for stream_id, *_ in rows}
        for stream_id, version, *_ in rows:  # checked before anything is written: all or nothing
            if version != versions[stream_id] + 1:
                raise ConcurrencyError(rows[0][0], rows[0][1] - 1)
            versions[stream_id] = version
        first = len(self.log) + 1
        for i, (stream_id, version, event_id, name, schema_version, data, meta, hash_, event) in enumerate(rows):
            entry = Recorded(
                first + i,
                stream_id,
                version,
                event_id,
                name,
                schema_version,
                data,
                meta,
                now,
                self.source,
                hash_,
                event,
            )
            self.log.append(entry)
            self._streams.setdefault(stream_id, []).append(entry)
        return first

    async def read_all(self, after: int = 0, limit: int = 1000) -> list[Recorded]:
        """Own events after `after`, in position order."""
        return self.log[after : after + limit]
