"""Where `sluice run`'s time goes for one file on the local cloud: import, cloud start, upload,
the execution (and within it the stages), copying the lake out, stop.

    python -m bench.localrun FILE [--dataset NAME] [--repeat 3] [--markdown]

Each run is a fresh interpreter (the import is part of what a user waits for); the phases are
the best of `--repeat` runs, each phase on its own. Run it from two checkouts in turn to compare
them on the same machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PHASES = ("import", "start", "upload", "run", "snapshot", "stop")


def once(file: Path, dataset: str) -> dict[str, Any]:
    marks = [("", time.perf_counter())]
    from sluice.local import LocalCloud

    marks.append(("import", time.perf_counter()))
    cloud = LocalCloud(publish_stack=False).start()  # as `sluice run` starts it
    marks.append(("start", time.perf_counter()))
    before = len(cloud.runtime.invocations)
    source = cloud.upload(file, dataset)
    marks.append(("upload", time.perf_counter()))
    described = cloud.wait(source, timeout=900)
    marks.append(("run", time.perf_counter()))
    stages = {
        i.function.rsplit("-", 1)[-1]: i.duration_ms / 1000
        for i in cloud.runtime.invocations[before:]
        if not i.function.endswith("starter")
    }
    with tempfile.TemporaryDirectory() as lake:
        cloud.snapshot(Path(lake))
        marks.append(("snapshot", time.perf_counter()))
    cloud.stop()
    marks.append(("stop", time.perf_counter()))
    phases = {name: end - start for (_, start), (name, end) in itertools.pairwise(marks)}
    return {
        "status": described["status"],
        "phases": phases,
        "stages": stages,
        "total": marks[-1][1] - marks[0][1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--dataset", default="transactions")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", action="store_true", help="one table row of the best")
    parser.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.once:
        print(json.dumps(once(args.file, args.dataset)))
        return
    runs = []
    for _ in range(args.repeat):
        done = subprocess.run(
            [sys.executable, "-m", "bench.localrun", str(args.file), "--once"],
            capture_output=True,
            text=True,
            check=True,
        )
        run = json.loads(done.stdout.strip().splitlines()[-1])
        runs.append(run)
        phases = " ".join(f"{p} {run['phases'][p]:.2f}" for p in PHASES)
        stages = sum(run["stages"].values())
        print(f"{run['status']} {phases} total {run['total']:.2f} (stages {stages:.2f})")
    best = {p: min(r["phases"][p] for r in runs) for p in PHASES}
    stages = min(sum(r["stages"].values()) for r in runs)
    total = min(r["total"] for r in runs)
    print(f"best of {len(runs)}: " + " ".join(f"{p} {best[p]:.2f}" for p in PHASES), end="")
    print(f" total {total:.2f}; stages {stages:.2f}")
    if args.markdown:
        heads = ["import", "start", "upload", "execution", "lake copy", "stop", "total", "stages"]
        print("| " + " | ".join(heads) + " |\n|" + "---:|" * len(heads))
        print("| " + " | ".join(f"{v:.2f}" for v in [*best.values(), total, stages]) + " |")


if __name__ == "__main__":
    main()
