"""The file checks every TLS block's `validate()` makes, server or client side, so that a
missing key or an unreadable certificate is named at start instead of at first connect."""

from __future__ import annotations

import os
from typing import Any


def tls_file_problems(tls: Any, files: tuple[str, ...]) -> list[str]:
    """`cert_file` and `key_file` come as a pair; each of `files` that is set must be a
    readable file."""
    problems = []
    if bool(tls.cert_file) != bool(tls.key_file):
        problems.append(
            "cert_file, key_file: expected both or neither, got "
            f"cert_file={tls.cert_file!r} key_file={tls.key_file!r}"
        )
    for name in files:
        path = getattr(tls, name)
        if path and not (os.path.isfile(path) and os.access(path, os.R_OK)):
            problems.append(f"{name}: expected a readable file, got {path!r}")
    return problems
