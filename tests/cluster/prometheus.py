"""A real Prometheus (built into .testbin/ by `make testbin`, testcluster/prometheus) on 127.0.0.1, with its
own data directory, scraping the targets a test names every second; and its HTTP API, as Grafana asks it."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llmpack_dev.cluster import HOST, free_port

SCRAPE_INTERVAL = "1s"
START_WITHIN = 60.0  # seconds until it answers /-/ready (it replays no WAL: its directory is new)


@dataclass(frozen=True)
class Target:
    job: str
    url: str  # http://HOST:PORT/PATH
    labels: dict[str, str]


@dataclass(frozen=True)
class Prometheus:
    base: str

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                body = json.load(answer)
        except urllib.error.HTTPError as exc:  # a bad query: say which, with Prometheus's own words
            raise AssertionError(f"{path} {params}: {exc.code} {exc.read().decode()[:500]}") from None
        assert body["status"] == "success", body
        return body["data"]

    def instant(self, query: str, at: float | None = None) -> list[dict[str, Any]]:
        """The vector `query` gives at `at` (default: now): [{"metric": {...}, "value": [t, "v"]}]."""
        params = {"query": query, **({"time": f"{at:.3f}"} if at is not None else {})}
        data = self.api("query", **params)
        assert data["resultType"] == "vector", data
        return list(data["result"])

    def range(self, query: str, start: float, end: float, step: float = 1.0) -> list[dict[str, Any]]:
        """The matrix a time-series panel draws: [{"metric": {...}, "values": [[t, "v"], ...]}]."""
        data = self.api("query_range", query=query, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step:g}")
        assert data["resultType"] == "matrix", data
        return list(data["result"])

    def targets_up(self) -> dict[str, str]:
        return {t["labels"]["job"]: t["health"] for t in self.api("targets")["activeTargets"]}


def values(result: list[dict[str, Any]]) -> list[float]:
    """Every sample value of an instant or range result, NaN included."""
    return [float(v) for series in result
            for _, v in (series["values"] if "values" in series else [series["value"]])]


def finite(result: list[dict[str, Any]]) -> list[float]:
    return [v for v in values(result) if math.isfinite(v)]


def config(targets: list[Target]) -> dict[str, Any]:
    jobs = []
    for target in targets:
        where = urllib.parse.urlsplit(target.url)
        jobs.append({"job_name": target.job, "scheme": where.scheme, "metrics_path": where.path or "/metrics",
                     "static_configs": [{"targets": [where.netloc], "labels": target.labels}]})
    return {"global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL,
                       "evaluation_interval": SCRAPE_INTERVAL},
            "scrape_configs": jobs}


@contextmanager
def running(binary: Path, directory: Path, targets: list[Target]) -> Iterator[Prometheus]:
    """Prometheus scraping `targets`, its data and log in `directory`; stopped (SIGTERM, then SIGKILL) on exit."""
    if not binary.exists():
        raise AssertionError(f"{binary} is missing: run `make testbin`")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config(targets)))
    port = free_port()
    log = (directory / "prometheus.log").open("ab")
    proc = subprocess.Popen(
        [str(binary), f"--config.file={directory / 'prometheus.yml'}", f"--storage.tsdb.path={directory / 'data'}",
         f"--web.listen-address={HOST}:{port}", "--storage.tsdb.retention.time=1h", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://{HOST}:{port}"
        deadline = time.monotonic() + START_WITHIN
        while True:
            if proc.poll() is not None:
                said = (directory / "prometheus.log").read_text()
                raise AssertionError(f"prometheus exited {proc.returncode}: {said}")
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus not ready after {START_WITHIN}s")
            time.sleep(0.2)
        yield Prometheus(base)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
