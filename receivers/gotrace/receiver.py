"""The `gotrace` receiver: Go execution traces → park / GC / STW / lineage events.

Two sources (config decides):

- `endpoint`: pulls `<endpoint>?seconds=<window>` back to back. Go serves one trace at a
  time, so the next window is requested as soon as one has downloaded, while that one is
  parsed (at most one parse in flight: a slow pipeline slows the pulling, it does not
  pile up traces in memory).
- `directory`: reads each file matching `pattern` once it has stopped growing (same size
  and mtime over one poll), e.g. runtime/trace.FlightRecorder dumps.

Parsing runs in a worker thread; events are handed to the traces consumer in batches of
`max_batch_events`, waiting for each (back-pressure). A damaged trace is logged and
counted; the events of its complete generations have already gone out.

Clock: Go 1.25+ traces carry their own wall-clock snapshot. Older ones are anchored on
the time the request was sent (endpoint) or on the file's mtime as the trace end
(directory); the README states the accuracy.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import glob
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

from otel_goblock.receivers.gotrace.config import Config
from otel_goblock.receivers.gotrace.convert import SOURCE, ParkCarry, SpanCarry, to_events
from otel_goblock.receivers.gotrace.parser import TraceParseError, TraceReader
from otel_goblock.receivers.gotrace.peerpid import listening_pid

from otel_goblock.component import Component, Consumers, CreateSettings, Host
from otel_goblock.pdata import Event, RequestInfo, Traces

_SPOOL_IN_MEMORY = 32 << 20  # larger downloads spill to a temporary file
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


class GoTraceReceiver(Component):
    def __init__(self, settings: CreateSettings, config: Config, next_: Consumers) -> None:
        self._settings = settings
        self._config = config
        self._next = next_
        self._log: logging.Logger = settings.logger
        self._attrs = {"receiver": str(settings.id), "transport": SOURCE}
        meter = settings.meter
        self._events_counter = meter.create_counter(
            "goblock_events_received",
            unit="{event}",
            description="goblock events handed to the pipeline",
        )
        self._lost_counter = meter.create_counter(
            "goblock_events_lost", unit="{event}", description="goblock events the pipeline refused"
        )
        self._traces_counter = meter.create_counter(
            "goblock_gotrace_traces",
            unit="{trace}",
            description="execution traces read, by outcome (ok, parse_error, fetch_error)",
        )
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = config.pid
        self._done: dict[str, tuple[int, int]] = {}  # directory mode: path → (size, mtime)
        self._candidates: dict[str, tuple[int, int]] = {}
        self.traces_read = 0  # for tests and logs
        # Set at shutdown: a parse still running in its worker thread stops delivering.
        self._stopping = threading.Event()
        self.active_parses = 0  # worker threads still parsing (tests watch it reach 0)
        # endpoint mode: waits still open at the end of one window, continued in the next
        self._carry: ParkCarry | None = ParkCarry() if config.endpoint is not None else None
        # endpoint mode: spans whose end log fell between two windows join by their start
        self._spans: SpanCarry | None = SpanCarry() if config.endpoint is not None else None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, host: Host) -> None:
        self._loop = asyncio.get_running_loop()
        if self._config.endpoint is not None:
            self._task = asyncio.create_task(self._run_endpoint(), name=f"{self._settings.id}")
        else:
            directory = Path(self._config.directory or "")
            if not directory.is_dir():
                raise RuntimeError(f"gotrace: directory {directory} does not exist")
            self._task = asyncio.create_task(
                self._run_directory(directory), name=f"{self._settings.id}"
            )

    async def shutdown(self) -> None:
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- sources --------------------------------------------------------------------------

    def _resolve_pid(self) -> int:
        if self._pid is None and self._config.endpoint is not None:
            u = urlparse(self._config.endpoint)
            if u.hostname in _LOCAL_HOSTS:
                port = u.port or (443 if u.scheme == "https" else 80)
                self._pid = listening_pid(port)
                if self._pid is None:
                    self._log.warning(
                        "gotrace: cannot tell which process listens on port %d; "
                        "set `pid` (events go out with pid 0)",
                        port,
                    )
                    self._pid = 0
        return self._pid or 0

    async def _run_endpoint(self) -> None:
        import aiohttp

        cfg = self._config
        url = cfg.endpoint or ""
        timeout = aiohttp.ClientTimeout(total=float(cfg.window) + 30)
        parsing: asyncio.Task | None = None
        async with aiohttp.ClientSession(timeout=timeout) as session:
            try:
                while True:
                    started = time.time_ns()
                    try:
                        spool = await self._download(session, url, float(cfg.window))
                    except (TimeoutError, aiohttp.ClientError, OSError) as e:
                        self._traces_counter.add(1, {**self._attrs, "outcome": "fetch_error"})
                        self._log.warning("gotrace: fetching %s failed: %s", url, e)
                        await asyncio.sleep(min(float(cfg.window), 5.0))
                        continue
                    if spool is None:
                        await asyncio.sleep(min(float(cfg.window), 5.0))
                        continue
                    if parsing is not None:
                        await parsing
                    parsing = asyncio.create_task(self._parse(spool, url, start_wall_ns=started))
            finally:
                if parsing is not None:
                    parsing.cancel()

    async def _download(self, session, url: str, seconds: float) -> BinaryIO | None:
        async with session.get(url, params={"seconds": f"{seconds:g}"}) as resp:
            if resp.status != 200:
                body = (await resp.text(errors="replace"))[:200]
                self._traces_counter.add(1, {**self._attrs, "outcome": "fetch_error"})
                self._log.warning("gotrace: %s answered %d: %s", url, resp.status, body.strip())
                return None
            spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
            async for chunk in resp.content.iter_chunked(1 << 16):
                spool.write(chunk)
            spool.seek(0)
            return spool

    async def _run_directory(self, directory: Path) -> None:
        cfg = self._config
        while True:
            await self._scan(directory)
            await asyncio.sleep(float(cfg.poll_interval))

    async def _scan(self, directory: Path) -> None:
        cfg = self._config
        present = set()
        paths = glob.glob(str(directory / cfg.pattern))
        for path in sorted(paths, key=_mtime):
            try:
                st = os.stat(path)
            except OSError:
                continue
            present.add(path)
            sig = (st.st_size, st.st_mtime_ns)
            if self._done.get(path) == sig:
                continue
            if self._candidates.get(path) != sig:  # still growing, or new: look again later
                self._candidates[path] = sig
                continue
            del self._candidates[path]
            self._done[path] = sig
            with open(path, "rb") as f:
                await self._parse(f, path, end_wall_ns=st.st_mtime_ns)
            if cfg.delete_after_read:
                try:
                    os.unlink(path)
                except OSError as e:
                    self._log.warning("gotrace: cannot delete %s: %s", path, e)
        for gone in (self._done.keys() | self._candidates.keys()) - present:
            self._done.pop(gone, None)
            self._candidates.pop(gone, None)

    # -- parsing and delivery -------------------------------------------------------------

    async def _parse(
        self,
        stream: BinaryIO,
        name: str,
        *,
        start_wall_ns: int | None = None,
        end_wall_ns: int | None = None,
    ) -> None:
        pid = self._resolve_pid()
        try:
            await asyncio.to_thread(self._parse_sync, stream, name, pid, start_wall_ns, end_wall_ns)
        finally:
            stream.close()

    def _parse_sync(
        self,
        stream: BinaryIO,
        name: str,
        pid: int,
        start_wall_ns: int | None,
        end_wall_ns: int | None,
    ) -> None:
        """Worker thread: parse, convert, deliver batch by batch (blocking on each)."""
        self.active_parses += 1
        try:
            self._parse_and_deliver(stream, name, pid, start_wall_ns, end_wall_ns)
        finally:
            self.active_parses -= 1

    def _parse_and_deliver(
        self,
        stream: BinaryIO,
        name: str,
        pid: int,
        start_wall_ns: int | None,
        end_wall_ns: int | None,
    ) -> None:
        cfg = self._config
        try:
            offset = None
            if end_wall_ns is not None:
                offset = _end_anchored_offset(stream, end_wall_ns)
                stream.seek(0)
            reader = TraceReader(stream, wall_offset_ns=offset, start_wall_ns=start_wall_ns)
            carry = self._carry
            if carry is not None:
                carry.next_window()  # windows are parsed one at a time, in order
            batch: list[Event] = []
            records = reader.records()
            for ev in to_events(records, pid, int(cfg.min_park * 1e9), carry, self._spans):
                batch.append(ev)
                if len(batch) >= cfg.max_batch_events:
                    self._deliver(batch)
                    batch = []
            if batch:
                self._deliver(batch)
        except TraceParseError as e:
            self._traces_counter.add(1, {**self._attrs, "outcome": "parse_error"})
            self._log.warning("gotrace: %s: %s", name, e)
            return
        except _Stopped:
            return
        self.traces_read += 1
        self._traces_counter.add(1, {**self._attrs, "outcome": "ok"})
        self._log.debug(
            "gotrace: %s: go 1.%d, %d events, %d generations",
            name,
            reader.version,
            reader.events,
            reader.generations,
        )

    def _deliver(self, events: list[Event]) -> None:
        consumer = self._next.traces
        if consumer is None or self._loop is None:
            return
        if self._stopping.is_set():
            raise _Stopped
        traces = Traces(raw=b"", span_count=0, events=events, info=RequestInfo(transport=SOURCE))
        try:
            fut = asyncio.run_coroutine_threadsafe(consumer.consume_traces(traces), self._loop)
        except RuntimeError:  # the loop closed under a parse that outlived shutdown
            raise _Stopped from None
        try:
            while True:  # wait, but notice a shutdown that will never run the coroutine
                try:
                    fut.result(timeout=0.5)
                    break
                except concurrent.futures.TimeoutError:
                    if self._stopping.is_set():
                        fut.cancel()
                        raise _Stopped from None
        except _Stopped:
            raise
        except Exception as e:  # refused downstream (memory limiter, permanent error)
            self._lost_counter.add(len(events), self._attrs)
            self._log.warning("gotrace: pipeline refused %d events: %s", len(events), e)
            return
        self._events_counter.add(len(events), self._attrs)


class _Stopped(Exception):
    """The receiver shut down while a parse was delivering: abandon that trace."""


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _end_anchored_offset(stream: BinaryIO, end_wall_ns: int) -> int | None:
    """For traces without their own wall clock (Go < 1.25): the offset that puts the
    trace's last event at `end_wall_ns` (a file's mtime: when its writer finished).
    None when the trace has its own clock (then nothing is read twice)."""
    reader = TraceReader(stream, clock="trace")
    if reader.version >= 25:
        return None
    last = 0
    for _, ev in reader.raw_events():
        last = max(last, ev[0])
    return end_wall_ns - last
