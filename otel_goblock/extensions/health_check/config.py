from __future__ import annotations

from dataclasses import dataclass, field

from otel_goblock.config import Endpoint


@dataclass
class Config:
    endpoint: Endpoint = field(default_factory=lambda: Endpoint("localhost:13133"))
    path: str = "/"

    def validate(self) -> list[str]:
        return (
            []
            if self.path.startswith("/")
            else [f"path: expected to start with /, got {self.path!r}"]
        )
