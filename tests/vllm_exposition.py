"""What one vLLM v0.11.0 replica's /metrics shows, for a Prometheus to scrape: the series the dashboard reads,
under the names and labels (model_name, engine) of vllm/v1/metrics/loggers.py at v0.11.0, with the help texts
and buckets it uses. kwok plays the serving pods, so no vLLM runs: this small server stands in for its metrics
page, as if the replica were serving a steady stream of requests (each scrape, a few more are answered)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from llmpack_dev.cluster import HOST

TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
                40.0, 80.0, 160.0, 640.0, 2560.0)
# Every vLLM series the dashboard reads; tests/unit/test_dashboard.py holds the dashboard to exactly these.
SERIES = ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
          "vllm:time_to_first_token_seconds", "vllm:generation_tokens")


class Replica:
    def __init__(self, model_name: str, seed: int = 0) -> None:
        self.registry = CollectorRegistry()
        self.random = random.Random(seed)
        labels = {"model_name": model_name, "engine": "0"}
        r = self.registry
        self.running = Gauge(SERIES[0], "Number of requests in model execution batches.", list(labels), registry=r)
        self.waiting = Gauge(SERIES[1], "Number of requests waiting to be processed.", list(labels), registry=r)
        self.kv = Gauge(SERIES[2], "KV-cache usage. 1 means 100 percent usage.", list(labels), registry=r)
        self.ttft = Histogram(SERIES[3], "Histogram of time to first token in seconds.", list(labels),
                              buckets=TTFT_BUCKETS, registry=r)
        self.generated = Counter(SERIES[4], "Number of generation tokens processed.", list(labels), registry=r)
        self.labels = labels
        self.lock = threading.Lock()

    def serve_a_little(self) -> None:
        """What a busy replica did since the last scrape: a few requests answered, their first tokens after
        50-300 ms, ~40 tokens/s each."""
        with self.lock:
            running = self.random.randint(3, 8)
            self.running.labels(**self.labels).set(running)
            self.waiting.labels(**self.labels).set(self.random.randint(0, 3))
            self.kv.labels(**self.labels).set(round(self.random.uniform(0.3, 0.6), 3))
            for _ in range(running):
                self.ttft.labels(**self.labels).observe(self.random.uniform(0.05, 0.3))
            self.generated.labels(**self.labels).inc(running * self.random.randint(30, 50))

    def page(self) -> bytes:
        self.serve_a_little()
        with self.lock:
            return generate_latest(self.registry)


@contextmanager
def serving(replica: Replica) -> Iterator[str]:
    """The replica's /metrics on a free loopback port, until the block ends; yields its URL."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/metrics":
                self.send_error(404)
                return
            body = replica.page()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="vllm-metrics", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
