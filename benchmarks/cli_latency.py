"""How fast the command line answers when it has nothing heavy to do: help, the version, and a
misspelt or mistyped setting, each a fresh process (as a user types them), median of N runs.

    python benchmarks/cli_latency.py [--runs 5] [--json out.json]

The CLI parses its arguments and checks the settings before it imports torch, so these should
answer in well under a second; `import torch` alone is timed for comparison.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

CASES = {
    "pixtrans --help": ["--help"],
    "pixtrans --version": ["--version"],
    "pixtrans train train.bach_size=2 (misspelt key)": ["train", "train.bach_size=2"],
    "pixtrans train train.batch_size=two (bad value)": ["train", "train.batch_size=two"],
    "pixtrans train --netX unet_256 (unknown flag)": ["train", "--netX", "unet_256"],
    "pixtrans config --keys": ["config", "--keys"],
}


def wall(args: list[str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True)
    return time.perf_counter() - t0, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", default=None)
    opts = parser.parse_args()
    rows = {}
    cases = {**CASES, "python -c 'import torch' (for comparison)": None}
    for name, argv in cases.items():
        cmd = (
            [sys.executable, "-c", "import torch"]
            if argv is None
            else [sys.executable, "-m", "pixtrans.cli", *argv]
        )
        times, codes = [], set()
        for _ in range(opts.runs):
            t, code = wall(cmd)
            times.append(t)
            codes.add(code)
        rows[name] = {"median_s": statistics.median(times), "min_s": min(times), "exit_codes": sorted(codes)}
        print(f"{name:<52} median {rows[name]['median_s']:.3f} s  (exit {sorted(codes)})", flush=True)
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
