"""Config of the `bearertokenauth` extension (collector-contrib `bearertokenauthextension`).

The token comes either inline (`token`, normally `"${env:TOKEN}"` so it never sits in the
file) or from `filename` (a mounted secret); exactly one of the two.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Config:
    token: str = ""
    filename: str = ""
    scheme: str = "Bearer"  # the word before the token in the header value
    header: str = "authorization"  # which request header carries it (case-insensitive)

    def validate(self) -> list[str]:
        problems = []
        if bool(self.token) == bool(self.filename):
            problems.append(
                "token, filename: expected exactly one of them, got "
                f"{'both' if self.token else 'neither'}"
            )
        if not self.header:
            problems.append('header: expected a header name like "authorization", got ""')
        if any(c.isspace() for c in self.scheme):
            problems.append(f'scheme: expected one word like "Bearer", got {self.scheme!r}')
        # never echo the token itself in a problem message
        if self.token and any(c.isspace() for c in self.token.strip()):
            problems.append("token: expected no whitespace inside the token")
        return problems

    def __repr__(self) -> str:
        """Redacted: a config dump or a traceback must not carry the secret."""
        token = "<redacted>" if self.token else ""
        return (
            f"Config(token={token!r}, filename={self.filename!r}, scheme={self.scheme!r}, "
            f"header={self.header!r})"
        )
