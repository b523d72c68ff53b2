"""What the operator's /metrics costs: 200 LLMModels applied at once, with and without --metrics, alternately
in one run (median of 3 each). With metrics, /metrics is scraped every second from the first create to all
Ready (15 to 30 times as often as a Prometheus usually does, so the figure is an upper bound), and once more
when all are Ready, which is when its output is largest.

Rerun: make testbin && .venv/bin/python bench/metrics_cost.py [--models 200] [--rounds 3] [--every 1.0]
Prints the operator's CPU seconds from the first create to all Ready and its peak RSS, each run and their
medians, the ratio with/without, and the scrape's duration and size at 200 Ready models. Needs a quiet
machine: on a busy one the runs take minutes and differ more between themselves than by metrics.

Measured 2026-11-30 (branch operator-scale), `--models 200 --rounds 3 --timeout 600`, load 9-17 on 2 cores:
operator CPU to all Ready, median 19.0 s off (18.8 / 20.3 / 19.0) vs 26.7 s on (25.3 / 26.7 / 29.6), ratio
1.40 with ~225 scrapes a run, i.e. ~34 ms of operator CPU per scrape on that box (a Prometheus every 30 s would
scrape ~8 times in the same 4 minutes: ~0.3 s); peak RSS 99.8 vs 101.1 MB (1.01); all Ready 246 vs 259 s.
One scrape of 200 Ready models: median 63.8 ms wall, 173 KiB, 1867 samples.

`--in-process` needs no cluster: a scrape of a Store of N Ready models with every condition (a tenth of them
downloading), and what the hot path pays per reconcile pass and per queued key, in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.operator_scale import NAMESPACE, converged, cpu_seconds, create_all, peak_rss_mb  # noqa: E402
from llmpack.api.crd import crd  # noqa: E402
from llmpack_dev.cluster import LocalCluster, free_port  # noqa: E402
from llmpack_dev.nodes import node  # noqa: E402
from tests.cluster.operator_process import OperatorProcess  # noqa: E402


@dataclass
class Run:
    metrics: bool
    cpu: float = float("nan")
    ready: float = float("nan")
    rss: float = float("nan")
    scrapes: list[float] = field(default_factory=list)  # seconds each
    last_size: int = 0
    last_seconds: float = float("nan")
    series: int = 0


def scrape(url: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as answer:
        body: bytes = answer.read()
    return time.perf_counter() - started, body


def measure(models: int, metrics: bool, every: float, timeout: float) -> Run:
    run = Run(metrics)
    with tempfile.TemporaryDirectory(prefix="llmpack-metrics-bench-") as tmp:
        cluster = LocalCluster(Path(tmp) / "cluster", ROOT / ".testbin", audit=False)
        cluster.up()
        url = f"http://127.0.0.1:{free_port()}/metrics"
        operator = OperatorProcess(cluster.kubeconfig_for("operator"), Path(tmp) / "operator.log",
                                   ["--metrics", url] if metrics else [])
        stop = threading.Event()

        def scraper() -> None:
            while not stop.wait(every):
                with contextlib.suppress(OSError):
                    run.scrapes.append(scrape(url)[0])

        try:
            extra = [node(f"cpu-bench-{i}", cpu="64", memory="256Gi") for i in range(models // 100 + 1)]
            cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(extra))
            cluster.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(crd()))
            cluster.kubectl("wait", "--for=condition=Established", "crd/llmmodels.llm.nebari.dev")
            cluster.kubectl("create", "namespace", NAMESPACE)
            operator.start()
            time.sleep(3)
            assert operator.proc is not None
            before = cpu_seconds(operator.proc.pid)
            thread = threading.Thread(target=scraper, daemon=True)
            if metrics:
                thread.start()
            manifests: list[dict[str, object]] = [{"apiVersion": "llm.nebari.dev/v1alpha1", "kind": "LLMModel",
                          "metadata": {"name": f"model-{i:03d}", "namespace": NAMESPACE},
                          "spec": {"model": {"name": f"org/model-{i:03d}", "storage": {"size": "30Gi"}},
                                   "resources": {"gpu": {"count": 0}}}} for i in range(models)]
            started = time.monotonic()
            asyncio.run(create_all(cluster, manifests))
            while time.monotonic() - started < timeout:
                if converged(cluster, models)[1] == models:
                    run.ready = time.monotonic() - started
                    run.cpu = cpu_seconds(operator.proc.pid) - before
                    break
                time.sleep(0.5)
            stop.set()
            if metrics:
                thread.join()
                time.sleep(1)
                run.last_seconds, body = scrape(url)
                run.last_size = len(body)
                run.series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
            run.rss = peak_rss_mb(operator.proc.pid)
        finally:
            stop.set()
            operator.stop()
            cluster.down()
    return run


def in_process(models: int) -> None:
    import json

    from llmpack.operator.metrics import Metrics
    from llmpack.operator.store import Store
    from llmpack.wellknown import MODEL_LABEL, PROGRESS_ANNOTATION

    store = Store()
    types = ("Ready", "StorageReady", "ModelReady", "Available", "InferencePoolReady", "ExternalEndpointReady",
             "InternalEndpointReady")
    for i in range(models):
        store.put_model({"metadata": {"namespace": NAMESPACE, "name": f"m{i}"}, "status": {
            "phase": "Ready", "replicas": {"ready": 1, "desired": 1},
            "conditions": [{"type": t, "status": "True", "reason": "x"} for t in types]}})
    progress = json.dumps({"phase": "downloading", "bytes_done": 1 << 30, "bytes_total": 10 << 30, "percent": 10,
                           "rate": "100.0Mi/s"})
    for i in range(models // 10):
        store.put_child("Lease", {"metadata": {"namespace": NAMESPACE, "name": f"m{i}-model-download",
                                               "labels": {MODEL_LABEL: f"m{i}"},
                                               "annotations": {PROGRESS_ANNOTATION: progress}}})
    metrics = Metrics(store, lambda: 0, lambda: 0)
    times = []
    for _ in range(50):
        started = time.process_time()
        body = metrics.page()[1]
        times.append(time.process_time() - started)
    samples = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    count = 100_000
    started = time.process_time()
    for _ in range(count):
        metrics.reconciled("success", 0.001)
    per_pass = (time.process_time() - started) / count
    started = time.process_time()
    for _ in range(count):
        metrics.waits.observe(0.001)
    per_key = (time.process_time() - started) / count
    print(f"a scrape of {models} Ready models ({models // 10} downloading): median "
          f"{statistics.median(times) * 1000:.1f} ms CPU, {len(body) / 1024:.0f} KiB, {samples} samples")
    print(f"hot path: {per_pass * 1e6:.1f} us per reconcile pass (counter + histogram), {per_key * 1e6:.1f} us per "
          "queued key (wait histogram)")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    print(f"rerun: .venv/bin/python bench/metrics_cost.py --in-process --models {models}")


def median(runs: list[Run], attr: str) -> float:
    return float(statistics.median(float(getattr(r, attr)) for r in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--every", type=float, default=1.0, help="seconds between scrapes (default 1)")
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--in-process", action="store_true", help="no cluster: scrape and hot-path cost only")
    args = parser.parse_args()
    if args.in_process:
        in_process(args.models)
        return
    runs: dict[bool, list[Run]] = {False: [], True: []}
    for i in range(args.rounds):
        for metrics in ((False, True) if i % 2 == 0 else (True, False)):  # alternate which goes first
            run = measure(args.models, metrics, args.every, args.timeout)
            runs[metrics].append(run)
            print(f"round {i + 1}, metrics {'on ' if metrics else 'off'}: CPU to all Ready {run.cpu:.2f} s, "
                  f"all Ready in {run.ready:.1f} s, peak RSS {run.rss:.0f} MB"
                  + (f", {len(run.scrapes)} scrapes" if metrics else ""), flush=True)
    off, on = runs[False], runs[True]
    print(f"models: {args.models}, rounds: {args.rounds}, scraped every {args.every:g} s while they converged")
    for attr, unit, what in (("cpu", "s", "operator CPU to all Ready"), ("rss", "MB", "operator peak RSS"),
                             ("ready", "s", "all Ready after")):
        a, b = median(off, attr), median(on, attr)
        print(f"{what}: median {a:.2f} {unit} without metrics, {b:.2f} {unit} with (ratio {b / a:.3f})")
    scrapes = [s for r in on for s in r.scrapes]
    if scrapes:
        print(f"scrape while converging: median {statistics.median(scrapes) * 1000:.1f} ms, "
              f"max {max(scrapes) * 1000:.1f} ms ({len(scrapes)} scrapes)")
    print(f"scrape with all {args.models} Ready: median {median(on, 'last_seconds') * 1000:.1f} ms, "
          f"{median(on, 'last_size') / 1024:.0f} KiB, {median(on, 'series'):.0f} samples")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    print(f"rerun: make testbin && .venv/bin/python bench/metrics_cost.py --models {args.models} "
          f"--rounds {args.rounds} --every {args.every:g}")


if __name__ == "__main__":
    main()
