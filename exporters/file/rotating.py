"""A file that rotates by size, as lumberjack (the collector's fileexporter) does: when the
next write would pass the limit the file is renamed `<stem>-<UTC time>.<ext>` and a new one
opened; only the newest `max_backups` backups are kept. A write is never split across files.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import BinaryIO


class RotatingFile:
    def __init__(self, path: str, max_bytes: int, max_backups: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_backups = max_backups
        self.path.parent.mkdir(parents=True, exist_ok=True)  # as lumberjack does
        self._f: BinaryIO = open(self.path, "ab")  # noqa: SIM115 - kept open on purpose
        self._size = self._f.tell()

    def write(self, data: bytes) -> None:
        if self.max_bytes and self._size and self._size + len(data) > self.max_bytes:
            self.rotate()
        self._f.write(data)
        self._size += len(data)

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def backups(self) -> list[Path]:
        """Backups, oldest first (the timestamp in the name sorts in time order)."""
        stem, ext = self.path.stem, self.path.suffix
        return sorted(self.path.parent.glob(f"{stem}-*{ext}"))

    def rotate(self) -> None:
        self._f.close()
        now = datetime.datetime.now(datetime.UTC)
        stamp = now.strftime("%Y-%m-%dT%H-%M-%S.") + f"{now.microsecond // 1000:03d}"
        backup = self.path.with_name(f"{self.path.stem}-{stamp}{self.path.suffix}")
        n = 1
        while backup.exists():  # two rotations in one millisecond
            backup = self.path.with_name(f"{self.path.stem}-{stamp}.{n}{self.path.suffix}")
            n += 1
        os.replace(self.path, backup)
        if self.max_backups:
            for old in self.backups()[: -self.max_backups]:
                old.unlink(missing_ok=True)
        self._f = open(self.path, "ab")  # noqa: SIM115
        self._size = 0
