"""Where `sluice run`'s time goes for one file on the local cloud: import, cloud start, upload,
the execution, copying the lake out, stop (`python -m bench.localrun FILE [--dataset NAME]`).

Run it from two checkouts in turn to compare them on the same machine.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--dataset", default="transactions")
    args = parser.parse_args()
    marks = [("", time.perf_counter())]
    from sluice.local import LocalCloud

    marks.append(("import", time.perf_counter()))
    cloud = LocalCloud().start()
    marks.append(("start", time.perf_counter()))
    source = cloud.upload(args.file, args.dataset)
    marks.append(("upload", time.perf_counter()))
    described = cloud.wait(source, timeout=900)
    marks.append(("run", time.perf_counter()))
    with tempfile.TemporaryDirectory() as lake:
        cloud.snapshot(Path(lake))
        marks.append(("snapshot", time.perf_counter()))
    cloud.stop()
    marks.append(("stop", time.perf_counter()))
    phases = " ".join(
        f"{name} {end - start:.2f}" for (_, start), (name, end) in itertools.pairwise(marks)
    )
    print(f"{described['status']} {phases} total {marks[-1][1] - marks[0][1]:.2f}")


if __name__ == "__main__":
    main()
