"""How long each Lambda handler takes to import: the cold start Sluice's own code adds.

    python -m bench.coldstart [--repeat 5] [--top 8] [--json]

Each handler is loaded in a fresh interpreter the way the Lambda runtime (and
`sluice.local.worker.load_handler`) does: `functions/<stage>/handler.py` from its file. The
seconds are the best of `--repeat` loads, timed inside the child around the load alone
(interpreter start-up left out): wall clock, and CPU time of all the process's threads, which
a busy machine disturbs less (it can exceed the wall clock: numpy starts its BLAS threads at
import). The modules listed are the largest cumulative times of the quietest of `--traces`
more loads under `python -X importtime`; importtime adds its own overhead, so read those
figures as shares, not as the cold start. The table also names the heavy packages each
handler loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("starter", "validate", "trusted", "delivery")
# Packages worth naming when a handler loads them: what dominates an import, or what no
# Lambda ships (pandas).
HEAVY = (
    "pandas",
    "pyarrow",
    "numpy",
    "openpyxl",
    "yaml",
    "boto3",
    "botocore",
    "aws_lambda_powertools",
    "jmespath",
    "pydantic",
)
MARKER = "-- sluice handler load --"

# The child: load the handler from its file, print the seconds the load took and the
# top-level packages it added to sys.modules.
CHILD = f"""
import importlib.util, json, sys, time
stage, path = sys.argv[1], sys.argv[2]
before = set(sys.modules)
sys.stderr.write({MARKER!r} + "\\n"); sys.stderr.flush()
started, cpu_started = time.perf_counter(), time.process_time()
spec = importlib.util.spec_from_file_location("sluice_function_" + stage, path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
added = sorted({{name.partition(".")[0] for name in set(sys.modules) - before}})
print(json.dumps({{"seconds": seconds, "cpu": cpu, "packages": added}}))
"""


@dataclass(frozen=True)
class Load:
    seconds: float
    cpu: float
    packages: list[str]
    stderr: str


def _lambda_path() -> str:
    """The child's module path as a Lambda's: the code, then the packages' folder, put on
    PYTHONPATH (as Lambda puts its layer's `/opt/python`), so no `.pth` file of the venv runs.
    (An editable install's finder alone costs ~15 ms of every load; no Lambda has one.)"""
    packages = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    return os.pathsep.join([str(ROOT), *packages])


def load(stage: str, importtime: bool = False) -> Load:
    """Load one handler in a fresh interpreter started as the Lambda runtime's: no `site`
    processing of the packages' folder (`-S`, the packages on PYTHONPATH)."""
    flags = ["-X", "importtime"] if importtime else []
    handler = ROOT / "functions" / stage / "handler.py"
    proc = subprocess.run(
        [sys.executable, "-S", *flags, "-c", CHILD, stage, str(handler)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": _lambda_path()},
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return Load(result["seconds"], result["cpu"], result["packages"], proc.stderr)


@dataclass(frozen=True)
class Imported:
    module: str
    self_us: int
    cumulative_us: int
    depth: int


def parse_importtime(stderr: str) -> list[Imported]:
    """The `-X importtime` lines printed after the child's marker (the handler's load)."""
    _, _, after = stderr.partition(MARKER)
    rows = []
    for line in after.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|", 2)
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append(Imported(name.strip(), int(self_us), int(cumulative_us), depth))
    return rows


def measure(stage: str, repeat: int, top: int, traces: int) -> dict[str, Any]:
    loads = [load(stage) for _ in range(repeat)]
    # The quietest of a few traced loads: the one whose imports took the least in all.
    traced = min(
        (parse_importtime(load(stage, importtime=True).stderr) for _ in range(traces)),
        key=lambda rows: sum(row.self_us for row in rows),
    )
    ranked = sorted(traced, key=lambda row: row.cumulative_us, reverse=True)[:top]
    return {
        "stage": stage,
        "seconds": min(item.seconds for item in loads),
        "cpu_seconds": min(item.cpu for item in loads),
        "heavy": [name for name in HEAVY if name in loads[0].packages],
        "top": [
            {"module": row.module, "cumulative_s": row.cumulative_us / 1e6, "depth": row.depth}
            for row in ranked
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--traces", type=int, default=3, help="-X importtime loads per handler")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [measure(stage, args.repeat, args.top, args.traces) for stage in STAGES]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"| handler | import s (best of {args.repeat}) | CPU s | heavy packages loaded |")
    print("|---|---:|---:|---|")
    for result in results:
        heavy = ", ".join(result["heavy"]) or "–"
        stage, wall, cpu = result["stage"], result["seconds"], result["cpu_seconds"]
        print(f"| {stage} | {wall:.3f} | {cpu:.3f} | {heavy} |")
    for result in results:
        print(f"\n{result['stage']}: largest cumulative imports (-X importtime)")
        for row in result["top"]:
            indent = "  " * row["depth"]
            print(f"  {row['cumulative_s']:7.3f} s  {indent}{row['module']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
