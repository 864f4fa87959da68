"""A bounded load test of `pixtrans serve` on loopback: N requests from C concurrent clients
against one model (the demo's export by default), then one JSON line of figures.

    python benchmarks/serve_load.py [EXPORT_OR_RUN] [--requests 200] [--clients 8] [--mode paper]

The server runs as its own process (`pixtrans serve`, as a user starts it), so its memory is
measured alone: RSS after start-up and a warm-up, and again after the load. Each client posts
the model's example inputs (or, without a dataset, a label drawing in the model's palette) in
turn and times each request end to end. Fixed count and a wall-clock cap (--max-seconds): the
test stops there and says so. Reported: errors (any non-200), status counts, p50/p95/max latency,
throughput, mean batch size (requests the server ran together), RSS before/after.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc")


def inputs_for(url: str, model: dict) -> list[bytes]:
    """PNG inputs: the model's examples, or a drawing of label rectangles in its palette."""
    from PIL import Image

    name = model["name"]
    out = [
        httpx.get(f"{url}/models/{name}/examples/{ex['index']}/input.png").content
        for ex in model["examples"]
        if "input.png" in ex["files"]
    ]
    if out:
        return out
    h, w = model["size"]
    rng = np.random.default_rng(0)
    colours = [c["color"] for c in model["palette"].get("classes", [])] or [[0, 0, 0], [255, 255, 255]]
    for _ in range(4):
        img = np.zeros((h, w, 3), np.uint8)
        img[:] = colours[0]
        for _ in range(12):
            y, x = rng.integers(0, h), rng.integers(0, w)
            img[y : y + h // 4, x : x + w // 4] = colours[rng.integers(0, len(colours))]
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "model", nargs="?", default="runs/demo/export", help="export or run folder (default: the demo)"
    )
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--mode", choices=["paper", "eval"], default="paper", help="as the page sends (paper)")
    ap.add_argument("--warmup", type=int, default=8)
    ap.add_argument("--max-seconds", type=float, default=600.0, help="stop the load after this long")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()
    if not Path(args.model).exists():
        print(
            f"error: no model at '{args.model}'; train the demo first "
            "(pixtrans train, or pixtrans serve --demo)",
            file=sys.stderr,
        )
        return 2

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "pixtrans", "serve", args.model, "--port", str(port), "--queue-size", "64"]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                print(f"error: the server exited: {server.stderr.read()[-500:]}", file=sys.stderr)
                return 2
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                print("error: the server did not start within 180 s", file=sys.stderr)
                return 2
            time.sleep(0.2)
        model = httpx.get(f"{url}/models").json()["models"][0]
        bodies = inputs_for(url, model)
        endpoint = f"{url}/translate/{model['name']}"
        form = {"mode": args.mode, "seed": "0"}
        with httpx.Client(timeout=120) as c:
            for i in range(args.warmup):
                c.post(
                    endpoint, files={"image": ("x.png", bodies[i % len(bodies)])}, data=form
                ).raise_for_status()
        before = rss_mb(server.pid)
        base = httpx.get(f"{url}/health").json()["models"][model["name"]]

        latencies: list[float] = []
        statuses: dict[str, int] = {}
        lock = threading.Lock()
        counter = iter(range(args.requests))
        stop_at = time.monotonic() + args.max_seconds

        def client(k: int) -> None:
            with httpx.Client(timeout=120) as c:
                for i in counter:  # shared: each request is taken by exactly one client
                    if time.monotonic() > stop_at:
                        return
                    t0 = time.perf_counter()
                    try:
                        r = c.post(
                            endpoint, files={"image": ("x.png", bodies[(i + k) % len(bodies)])}, data=form
                        )
                        code = str(r.status_code)
                    except httpx.HTTPError as e:
                        code = type(e).__name__
                    dt = (time.perf_counter() - t0) * 1000
                    with lock:
                        latencies.append(dt)
                        statuses[code] = statuses.get(code, 0) + 1

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        after = rss_mb(server.pid)
        state = httpx.get(f"{url}/health").json()["models"][model["name"]]
        lat = np.array(latencies)
        done, batches = state["done"] - base["done"], state["batches"] - base["batches"]
        result = {
            "model": model["name"],
            "image": list(model["size"]),
            "mode": args.mode,
            "requests": len(latencies),
            "requested": args.requests,
            "clients": args.clients,
            "errors": len(latencies) - statuses.get("200", 0),
            "statuses": statuses,
            "stopped_early": len(latencies) < args.requests,
            "wall_s": round(wall, 2),
            "throughput_rps": round(len(latencies) / wall, 2),
            "latency_ms": {
                "p50": round(float(np.percentile(lat, 50)), 1),
                "p95": round(float(np.percentile(lat, 95)), 1),
                "max": round(float(lat.max()), 1),
            },
            "mean_batch": round(done / batches, 2) if batches else None,
            "rss_mb": {
                "before": round(before, 1),
                "after": round(after, 1),
                "growth": round(after - before, 1),
            },
            "cpus": os.cpu_count(),
        }
        text = json.dumps(result)
        print(text)
        if args.json:
            Path(args.json).write_text(text + "\n")
        return 0 if result["errors"] == 0 and not result["stopped_early"] else 1
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
