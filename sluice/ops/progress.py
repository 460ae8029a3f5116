"""A progress bar on stderr for a long upload."""

from __future__ import annotations

import sys
import threading
from typing import Any


class Progress:
    """A progress bar on stderr for one upload (boto3 calls it from its transfer threads)."""

    def __init__(self, name: str, size: int, stream: Any = None) -> None:
        self.name, self.size, self.done = name, max(size, 1), 0
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()

    def __call__(self, sent: int) -> None:
        with self.lock:
            self.done += sent
            share = min(self.done / self.size, 1.0)
            bar = "#" * int(share * 30)
            self.stream.write(
                f"\r{self.name} [{bar:<30}] {share:6.1%} "
                f"{self.done / 1e6:.1f}/{self.size / 1e6:.1f} MB"
            )
            if self.done >= self.size:
                self.stream.write("\n")
            self.stream.flush()
