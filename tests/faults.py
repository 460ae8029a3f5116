"""Faults that run inside a function's own process (`LambdaRuntime.add_worker_fault`).

Each is called with (stage, event) before the handler, in the function's environment, so it
meets the function's real limits: its memory, its timeout, its `/tmp`.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


def _aimed_at(stage: str, event: dict[str, Any], wanted: str, marker: str) -> bool:
    key = str(event.get("source", {}).get("key", ""))
    return stage == wanted and marker in key


def grow_memory(stage: str, event: dict[str, Any]) -> None:
    """Trusted keeps allocating (and touching) memory for a file named `*hog*`."""
    if not _aimed_at(stage, event, "trusted", "hog"):
        return
    held = []
    for _ in range(256):  # 8 GiB at most: the runtime ends it long before
        held.append(os.urandom(1) * (32 * MIB))
    raise AssertionError("the function was never stopped for its memory")


def hang(stage: str, event: dict[str, Any]) -> None:
    """Validate never returns for a file named `*hang*`."""
    if _aimed_at(stage, event, "validate", "hang"):
        time.sleep(3600)


def fill_tmp(stage: str, event: dict[str, Any]) -> None:
    """Trusted writes to `/tmp` until the disk is full, for a file named `*spill*`."""
    if not _aimed_at(stage, event, "trusted", "spill"):
        return
    chunk = b"\0" * (8 * MIB)
    with tempfile.NamedTemporaryFile(delete=False) as sink:
        for _ in range(100_000):
            sink.write(chunk)
            sink.flush()


class Counted(Exception):
    """Ends an invocation once the fault has done its part: the handler need not run."""


def count_tmp_then_grow(stage: str, event: dict[str, Any]) -> None:
    """Leave one file in `/tmp` and log how many are there now; grow past memory if asked."""
    Path(tempfile.mkstemp(prefix="left-")[1]).write_bytes(b"x")
    left = len(list(Path(tempfile.gettempdir()).glob("left-*")))
    print(f"tmp files: {left}")
    if event.get("grow"):
        held = [os.urandom(1) * (32 * MIB) for _ in range(256)]
        raise AssertionError(f"never stopped ({len(held)} blocks)")
    raise Counted(str(left))


def hang_always(stage: str, event: dict[str, Any]) -> None:
    time.sleep(3600)


def fill_tmp_always(stage: str, event: dict[str, Any]) -> None:
    fill_tmp("trusted", {"source": {"key": "spill"}})


def die_mid_delivery_write(stage: str, event: dict[str, Any]) -> None:
    """Delivery of dataset `midwrite` dies (SIGKILL) as it puts its second file."""
    if stage != "delivery" or event.get("dataset") != "midwrite":
        return
    import itertools
    import signal
    import threading

    from sluice.aws import ObjectStore

    real_put = ObjectStore.put_bytes
    numbers = itertools.count(1)
    first_written = threading.Event()

    def dies_after_one_file(self: ObjectStore, bucket: str, key: str, *rest: Any) -> None:
        if bucket == "delivery" and key.startswith("midwrite/"):
            number = next(numbers)  # (atomic, where append-then-len is not)
            if number == 2:
                # (days are written at once: the first file is in before the process dies)
                first_written.wait(timeout=30)
                os.kill(os.getpid(), signal.SIGKILL)
            real_put(self, bucket, key, *rest)
            if number == 1:
                first_written.set()
            return
        real_put(self, bucket, key, *rest)

    ObjectStore.put_bytes = dies_after_one_file  # type: ignore[method-assign]
