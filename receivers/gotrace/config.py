"""Config of the `gotrace` receiver: where Go execution traces come from, what to keep."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlparse

from otel_goblock.config import Duration


@dataclass
class Config:
    """Exactly one source: `endpoint` (pulled) or `directory` (watched)."""

    # URL of a Go program's net/http/pprof trace handler, pulled in back-to-back windows of
    # `window` seconds (`?seconds=N`), e.g. http://127.0.0.1:6060/debug/pprof/trace
    endpoint: str | None = None
    window: Duration = field(default_factory=lambda: Duration(5.0))
    # A directory of trace files (e.g. runtime/trace.FlightRecorder dumps), each read
    # once when it has stopped growing.
    directory: str | None = None
    pattern: str = "*.trace"
    poll_interval: Duration = field(default_factory=lambda: Duration(1.0))
    delete_after_read: bool = False
    # The traced process's pid, stamped on every event (the join groups by pid). When
    # unset, an endpoint on this host is resolved to the pid listening on its port.
    pid: int | None = None
    # Park intervals shorter than this are dropped (a busy service parks 100k times a
    # second; sub-100µs parks do not explain a slow span). 0 keeps everything.
    min_park: Duration = field(default_factory=lambda: Duration(0.0001))
    # Events handed to the pipeline per batch.
    max_batch_events: int = 8192

    def validate(self) -> list[str]:
        problems = []
        if (self.endpoint is None) == (self.directory is None):
            problems.append(
                "endpoint/directory: expected exactly one source, got "
                + ("both" if self.endpoint is not None else "neither")
            )
        if self.endpoint is not None:
            u = urlparse(self.endpoint)
            if u.scheme not in ("http", "https") or not u.hostname:
                problems.append(
                    f"endpoint: expected an http(s) URL like "
                    f"http://127.0.0.1:6060/debug/pprof/trace, got {self.endpoint!r}"
                )
            if u.query:
                problems.append(
                    f"endpoint: expected no query (the receiver adds ?seconds=), got {u.query!r}"
                )
        if not 1 <= self.window <= 60:
            problems.append(f"window: expected between 1s and 60s, got {self.window}")
        if not 0.05 <= self.poll_interval <= 60:
            problems.append(
                f"poll_interval: expected between 50ms and 60s, got {self.poll_interval}"
            )
        if self.pid is not None and self.pid <= 0:
            problems.append(f"pid: expected a positive process id, got {self.pid}")
        if self.min_park < 0:
            problems.append(f"min_park: expected ≥ 0, got {self.min_park}")
        if self.max_batch_events < 1:
            problems.append(f"max_batch_events: expected ≥ 1, got {self.max_batch_events}")
        if not self.pattern:
            problems.append("pattern: expected a glob like *.trace, got an empty string")
        return problems
