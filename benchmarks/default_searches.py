"""Wall time of each default search, `tuner run search_spaces/<model>.yaml` with its own budget, one after another.

Run by hand:  python benchmarks/default_searches.py --data-dir ../shared/data [--only gat mf]

Each search runs as a user runs it (a fresh `python -m tuner run` process, `resources: auto`) into a scratch
storage folder; the script records the command's wall time, its exit code and the run's last lines (the best
trial and the trial counts), and writes benchmarks/results/default_searches.json. The spec headers claim these
times: keep them true.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPECS = Path(__file__).resolve().parent.parent / "search_spaces"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--only", nargs="*", help="model names (the spec files' stems); default: every spec")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "default_searches.json"))
    args = parser.parse_args()
    names = args.only or sorted(p.stem for p in SPECS.glob("*.yaml"))
    results = {"machine": f"{platform.node()}, {os.cpu_count()} CPUs", "searches": {}}
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"default-{name}-") as storage:
            command = [sys.executable, "-m", "tuner", "run", str(SPECS / f"{name}.yaml"),
                       "--data-dir", args.data_dir, "--storage", storage]
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True)
            wall = time.perf_counter() - start
        summary = [line for line in done.stdout.splitlines() if not line.startswith("[")][-8:]
        results["searches"][name] = {"wall_seconds": round(wall, 1), "exit_code": done.returncode, "summary": summary}
        print(f"{name}: {wall / 60:.1f} min, exit {done.returncode}", *summary, sep="\n  ", flush=True)
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
