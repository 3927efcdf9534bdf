"""CPU pacing: after every `run` of the pipeline's CPU time its main thread rests `rest`.

Why: on a small node the observed app's tail latency depends less on how much CPU the
agent takes than on how long it holds a core without a break. Measured on the 2-core
demo at 1200 req/s (benchmarks/contention.py): a synthetic co-tenant burning 28 % of a
core in 20 ms bursts raised the app's p99 1.3-1.6x, the same share in 1 ms bursts did not
move it, and a `sched_yield` every 0.2 ms inside the bursts did not help either: the core
has to go idle for the scheduler to pull the app's waiting threads over. The pipeline's
long bursts are single synchronous steps on the event loop (a 512-span request joined,
a batch encoded), so a CPU-time timer (`ITIMER_PROF`) interrupts them wherever they are
and the handler sleeps, on the main thread, where that work runs.

The price is throughput: with `run` = `rest` the main thread does at most half a core's
work, and a backlog grows faster under overload (the queues' bounds and drop counters
still hold). Off by default; for nodes where the agent shares few cores with
latency-sensitive services.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from types import FrameType

from otel_goblock.config import Duration


@dataclass
class PacingConfig:
    enabled: bool = False
    # the pipeline's CPU time (all threads) between two checks; the main thread rests when
    # at least half of it was its own
    run: Duration = field(default_factory=lambda: Duration(0.001))
    rest: Duration = field(default_factory=lambda: Duration(0.001))

    def validate(self) -> list[str]:
        problems = []
        if not 0.0001 <= float(self.run) <= 1.0:
            problems.append(f"run: {self.run} is outside 100us..1s")
        if not 0 < float(self.rest) <= 1.0:
            problems.append(f"rest: {self.rest} is outside 0..1s (0 excluded: disable instead)")
        return problems


class Pacer:
    """Owns SIGPROF and ITIMER_PROF while started; main thread only (signal handlers run
    there, and `signal.signal` refuses other threads)."""

    def __init__(self, run_s: float, rest_s: float) -> None:
        self.run_s = run_s
        self.rest_s = rest_s
        self.checks = 0  # timer expiries handled
        self.rests = 0
        self._mark = 0.0
        self._started = False

    def start(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("cpu pacing must start on the main thread")
        self._mark = time.thread_time()
        signal.signal(signal.SIGPROF, self._on_timer)
        # the other threads' blocking calls restart (Python's own retry on EINTR anyway)
        signal.siginterrupt(signal.SIGPROF, False)
        signal.setitimer(signal.ITIMER_PROF, self.run_s, self.run_s)
        self._started = True

    def stop(self) -> None:
        if not self._started:
            return
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, signal.SIG_DFL)
        self._started = False

    def _on_timer(self, _signum: int, _frame: FrameType | None) -> None:
        # the timer counts every thread's CPU: rest only when the main thread did the work
        # (a busy ring-draining thread must not put the idle event loop to sleep)
        self.checks += 1
        if time.thread_time() - self._mark >= self.run_s / 2:
            time.sleep(self.rest_s)
            self.rests += 1
        self._mark = time.thread_time()
