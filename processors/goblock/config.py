"""Options of the goblock processor (the join of spans with goblock events)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from otel_goblock.config import Duration


@dataclass
class Config:
    """Every option is documented in README.md next to this file."""

    # how long events stay in the per-process timelines (a span can only be explained by
    # events still held when it is joined)
    retention: Duration = Duration(30.0)
    # upper bound of events held over all processes; beyond it the oldest are dropped
    max_events: int = 1_000_000  # ~35-205 B each (README): ~200 MiB at most
    # how long a span waits for late events before it leaves enriched (0: join at once)
    join_delay: Duration = Duration(2.0)
    # waits shorter than this do not become child spans (their time is still counted)
    min_episode: Duration = Duration(0.001)
    # episodes no span claims: "drop" (counted) or "emit" as root spans of their own traces
    unjoined: Literal["drop", "emit"] = "drop"
    # an episode is judged unclaimed once it ended this long ago (spans arrive late: the
    # OTel SDK batches exports every 5 s by default)
    unjoined_after: Duration = Duration(10.0)
    # a process seen by both the ebpf and the gotrace receivers: whose park / GC events count
    prefer_source: Literal["ebpf", "gotrace"] = "ebpf"
    # resolve the OTLP client's pid from its connection when a resource has no process.pid
    resolve_peer: bool = True
    # service.name of unjoined episodes' resources, by pid ("1234") or executable name
    service_names: dict[str, str] = field(default_factory=dict)
    # how many levels of child goroutines the critical path follows
    critical_path_depth: int = 3

    def validate(self) -> list[str]:
        problems = []
        if self.retention <= 0:
            problems.append(
                f'retention: expected a duration > 0 like "30s", got "{self.retention}"'
            )
        if self.max_events < 1:
            problems.append(f"max_events: expected >= 1, got {self.max_events}")
        if self.join_delay < 0:
            problems.append(f'join_delay: expected a duration >= 0, got "{self.join_delay}"')
        elif self.join_delay >= self.retention:
            problems.append(
                f'join_delay: must be below retention ("{self.retention}"), got "{self.join_delay}"'
            )
        if self.min_episode < 0:
            problems.append(f'min_episode: expected a duration >= 0, got "{self.min_episode}"')
        if self.unjoined_after <= 0:
            problems.append(
                f'unjoined_after: expected a duration > 0 like "10s", got "{self.unjoined_after}"'
            )
        elif self.unjoined_after >= self.retention:
            problems.append(
                f'unjoined_after: must be below retention ("{self.retention}"), '
                f'got "{self.unjoined_after}"'
            )
        if not 0 <= self.critical_path_depth <= 10:
            problems.append(f"critical_path_depth: expected 0..10, got {self.critical_path_depth}")
        return problems
