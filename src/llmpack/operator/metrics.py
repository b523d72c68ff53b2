"""The operator's Prometheus metrics (`llmpack run --metrics URL`, or LLMPACK_METRICS_PORT), served from its
event loop like --health.

Two kinds, so that the hot path pays almost nothing:
- events the operator lives through (reconciles, their duration, queue waits, API requests, webhook reviews)
  are counted
  where they happen: a counter increment or a histogram observation each, nothing more;
- what the cluster looks like (models by phase, conditions, replicas, downloads, queue depth) is read from
  the Store when Prometheus scrapes, never kept up to date per event.

Label cardinality is bounded: no label holds a request, a key or a pod. The per-model series (conditions,
replicas, download) are one per model and condition type, and the download ones exist only while that
model downloads; the rest are bounded by fixed sets (phases, verbs, status codes, results) and, for
`llmpack_models`, the namespaces that hold models. docs/operations.md lists every series.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from llmpack.admission.reviews import VERDICTS
from llmpack.api import Phase, names
from llmpack.assess.progress import download_progress
from llmpack.quantity import QuantityError, parse_quantity

if TYPE_CHECKING:
    import httpx2

    from llmpack.operator.store import Store

RESULTS = ("success", "problem", "error")  # applied; the model reports a problem (retried); an exception (retried)
PHASES = (*(str(p) for p in Phase), "Unknown")  # Unknown: no status written yet
# Most passes read only the Store (well under a millisecond); those that apply wait for the API server.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A review is answered in well under a millisecond unless the loop is busy; the API server gives up at 2 s.
REVIEW_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
WAIT_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0)
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class Metrics:
    """One registry per operator (tests run several in one process)."""

    def __init__(self, store: Store, depth: Callable[[], int], failing: Callable[[], int]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.reconciles = Counter("llmpack_reconciles", "Reconcile passes by kind and result: success, problem "
                                  "(the model reports one and is retried), error (an exception, retried).",
                                  ["kind", "result"], registry=self.registry)
        self.duration = Histogram("llmpack_reconcile_duration_seconds", "Time one reconcile pass took.", ["kind"],
                                  buckets=DURATION_BUCKETS, registry=self.registry)
        self.waits = Histogram("llmpack_workqueue_wait_seconds", "Time a model's key waited in the work queue "
                               "before a worker took it.", buckets=WAIT_BUCKETS, registry=self.registry)
        self.requests = Counter("llmpack_api_requests", "Requests to the Kubernetes API server by verb and HTTP "
                                "status code.", ["verb", "code"], registry=self.registry)
        self.reviews = Counter("llmpack_webhook_reviews", "Admission reviews the webhook answered, by verdict: "
                               "allowed, warned (allowed with warnings), invalid (not a review it can answer).",
                               ["verdict"], registry=self.registry)
        self.review_seconds = Histogram("llmpack_webhook_review_duration_seconds", "Time from a review's first "
                                        "byte read to its answer.", buckets=REVIEW_BUCKETS, registry=self.registry)
        # Bound once: the hot path then only increments, and every series exists from the start.
        self._passes = {r: self.reconciles.labels("LLMModel", r) for r in RESULTS}
        self._durations = self.duration.labels("LLMModel")
        self._verdicts = {v: self.reviews.labels(v) for v in VERDICTS}
        self.registry.register(_Cluster(store, depth, failing))
        ProcessCollector(registry=self.registry)  # the operator's own CPU seconds, memory, open files

    def reconciled(self, result: str, seconds: float) -> None:
        self._passes[result].inc()
        self._durations.observe(seconds)

    def reviewed(self, verdict: str, seconds: float) -> None:
        self._verdicts[verdict].inc()
        self.review_seconds.observe(seconds)

    def count_requests(self, http: httpx2.AsyncClient) -> None:
        """Count every response lightkube's connection receives (the reads and writes of apiserver.py's are
        told to `requested`)."""
        async def counted(response: httpx2.Response) -> None:
            request = response.request
            verb = _VERBS.get(request.method) or ("watch" if b"watch=" in request.url.query else "get")
            self.requested(verb, response.status_code)

        http.event_hooks["response"].append(counted)

    def requested(self, verb: str, code: int) -> None:
        self.requests.labels(verb, str(code)).inc()

    def page(self) -> tuple[str, bytes]:
        return CONTENT_TYPE_LATEST, generate_latest(self.registry)


class _Cluster:
    """The series read from the Store at scrape time."""

    def __init__(self, store: Store, depth: Callable[[], int], failing: Callable[[], int]) -> None:
        self.store, self.depth, self.failing = store, depth, failing

    def describe(self) -> list[Metric]:
        return []  # unchecked: its series come and go with the models

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("llmpack_workqueue_depth", "Model keys waiting for a worker.", value=self.depth())
        yield GaugeMetricFamily("llmpack_watch_streams_failing", "Watch streams failing since they last watched.",
                                value=self.failing())
        phases: Tally[tuple[str, str]] = Tally()
        condition = GaugeMetricFamily("llmpack_model_condition", "1 for each model's condition, by type and status.",
                                      labels=["namespace", "model", "type", "status"])
        ready = GaugeMetricFamily("llmpack_model_replicas_ready", "Replicas serving.", labels=["namespace", "model"])
        desired = GaugeMetricFamily("llmpack_model_replicas_desired", "Replicas wanted.", labels=["namespace", "model"])
        done = GaugeMetricFamily("llmpack_model_download_bytes_done", "Bytes downloaded so far (while a download "
                                 "runs).", labels=["namespace", "model"])
        total = GaugeMetricFamily("llmpack_model_download_bytes_total", "Bytes the download fetches in all.",
                                  labels=["namespace", "model"])
        rate = GaugeMetricFamily("llmpack_model_download_rate_bytes_per_second", "The downloader's average rate.",
                                 labels=["namespace", "model"])
        for (namespace, name), body in list(self.store.models.items()):
            status: dict[str, Any] = body.get("status") or {}
            phases[namespace, str(status.get("phase") or "Unknown")] += 1
            for c in status.get("conditions") or ():
                condition.add_metric([namespace, name, str(c.get("type")), str(c.get("status"))], 1)
            if replicas := status.get("replicas"):
                ready.add_metric([namespace, name], replicas.get("ready") or 0)
                desired.add_metric([namespace, name], replicas.get("desired") or 0)
            progress, _ = download_progress(self.store.child((namespace, name), "Lease", names.download_lease(name)))
            if progress is not None and progress.phase != "verifying":  # those bytes are read, not fetched
                done.add_metric([namespace, name], progress.bytes_done)
                if progress.bytes_total is not None:
                    total.add_metric([namespace, name], progress.bytes_total)
                if (per_second := bytes_per_second(progress.rate)) is not None:
                    rate.add_metric([namespace, name], per_second)
        models = GaugeMetricFamily("llmpack_models", "LLMModels by namespace and phase (Unknown: no status yet).",
                                   labels=["namespace", "phase"])
        for namespace in sorted({ns for ns, _ in phases}):
            for phase in PHASES:  # every phase, zeros too: a series does not vanish when its last model moves on
                models.add_metric([namespace, phase], phases[namespace, phase])
        yield from (models, condition, ready, desired, done, total, rate)


def bytes_per_second(rate: str | None) -> float | None:
    """The downloader's rate as written on the Lease ("12.3Mi/s") in bytes per second; None when unreadable."""
    if not rate or not rate.endswith("/s"):
        return None
    try:
        return float(parse_quantity(rate[:-2]))
    except QuantityError:
        return None
