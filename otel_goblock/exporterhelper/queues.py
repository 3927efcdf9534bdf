"""The sending queues: in memory (the default) or persistent in a directory.

Both are asyncio queues of *items* with a capacity in requests checked on `offer`; the
worker turns an item back into data with `load` and tells the queue it is finished with
`done`. In memory the item is the data itself. Persistent (`sending_queue.storage`), each
request is a file `<seq>-<count>.pb` holding the request bytes as received, written
(temp file + rename) before `offer` returns — so once the receiver acknowledged a request,
a `kill -9` cannot lose it — and removed only when the request was sent or given up; at
start the files left by a previous run are queued again, oldest first. Only file names
and counts stay in memory, so a large backlog on disk costs little RAM. Delivery is
at-least-once: a request in flight when the process died is sent again.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^(\d{16})-(\d+)\.pb$")


class MemoryQueue(asyncio.Queue):  # type: ignore[type-arg]
    persistent = False

    def __init__(self, capacity: int, count: Callable[[Any], int]) -> None:
        super().__init__()  # unbounded: the capacity is enforced by `offer`
        self.capacity = capacity
        self._count = count

    def offer(self, data: Any) -> None:
        if self.qsize() >= self.capacity:
            raise asyncio.QueueFull
        self.put_nowait(data)

    def items_of(self, item: Any) -> int:
        return self._count(item)

    def load(self, item: Any) -> Any:
        return item

    def done(self, item: Any) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class StoredRequest:
    path: Path
    count: int


class PersistentQueue(MemoryQueue):
    persistent = True

    def __init__(
        self,
        directory: Path,
        capacity: int,
        serialize: Callable[[Any], bytes],
        count: Callable[[Any], int],
        rebuild: Callable[[bytes, int], Any],
    ) -> None:
        super().__init__(capacity, count)
        self.directory = directory
        self._serialize = serialize
        self._rebuild = rebuild
        directory.mkdir(parents=True, exist_ok=True)
        # one process per directory: two writers would send each other's requests twice
        self._lock = open(directory / ".lock", "w")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise RuntimeError(
                f"sending_queue.storage: {directory} is in use by another exporter or process"
            ) from None
        self.recovered_items = 0
        self._seq = 0
        for leftover in directory.glob(".tmp-*"):  # a write cut short: never acknowledged
            leftover.unlink(missing_ok=True)
        stored = []
        for p in directory.iterdir():
            m = _NAME.match(p.name)
            if m:
                stored.append((int(m.group(1)), StoredRequest(p, int(m.group(2)))))
        for seq, req in sorted(stored, key=lambda s: s[0]):
            self.put_nowait(req)  # beyond the capacity if need be: never drop stored data
            self.recovered_items += req.count
            self._seq = seq + 1

    def offer(self, data: Any) -> None:
        if self.qsize() >= self.capacity:
            raise asyncio.QueueFull
        seq, self._seq = self._seq, self._seq + 1
        n = self._count(data)
        path = self.directory / f"{seq:016d}-{n}.pb"
        tmp = self.directory / f".tmp-{seq}"
        with open(tmp, "wb") as f:
            f.write(self._serialize(data))
        os.replace(tmp, path)
        self.put_nowait(StoredRequest(path, n))

    def items_of(self, item: StoredRequest) -> int:
        return item.count

    def load(self, item: StoredRequest) -> Any:
        return self._rebuild(item.path.read_bytes(), item.count)

    def done(self, item: StoredRequest) -> None:
        item.path.unlink(missing_ok=True)

    def close(self) -> None:
        if not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
