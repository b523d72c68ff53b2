"""The operator's /metrics, scraped from the real process while a model goes from Downloading to Ready."""

from __future__ import annotations

import json
import urllib.request

import pytest
from lightkube import AsyncClient
from lightkube.resources.coordination_v1 import Lease
from prometheus_client.parser import text_string_to_metric_families

from llmpack.wellknown import PROGRESS_ANNOTATION
from llmpack_dev.cluster import LocalCluster
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.test_operator_lifecycle import READY_WITHIN
from tests.cluster.waiting import eventually

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain; version=")
        text = answer.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels`."""
    return sum(v for (n, have), v in samples.items() if n == name and set(labels.items()) <= have)


async def test_metrics_show_the_download_then_the_model_ready_with_the_work_it_took(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    url = running_operator.metrics_url
    models.apply(cluster, "qwen", namespace)
    await eventually(lambda: client.get(Lease, "qwen-model-download", namespace=namespace),
                     what="the operator to create the download Lease")
    progress = {"phase": "downloading", "bytes_done": 8 << 30, "bytes_total": 20 << 30, "percent": 40,
                "rate": "200.0Mi/s", "eta": "61s", "holder": "qwen-7d9f-abcde"}
    await client.patch(Lease, "qwen-model-download", namespace=namespace,
                       obj={"metadata": {"annotations": {PROGRESS_ANNOTATION: json.dumps(progress)}}})
    model = {"namespace": namespace, "model": "qwen"}

    async def downloading() -> Samples | None:
        samples = scrape(url)
        return samples if value(samples, "llmpack_model_download_bytes_done", **model) == 8 << 30 else None

    samples = await eventually(downloading, what="the download's bytes in /metrics")
    assert value(samples, "llmpack_model_download_bytes_total", **model) == 20 << 30
    assert value(samples, "llmpack_model_download_rate_bytes_per_second", **model) == 200 << 20

    await client.patch(Lease, "qwen-model-download", namespace=namespace, obj={"metadata": {"annotations": {
        PROGRESS_ANNOTATION: json.dumps({"phase": "complete", "bytes_done": 20 << 30, "bytes_total": 20 << 30})}}})

    async def ready() -> Samples | None:
        samples = scrape(url)
        return samples if value(samples, "llmpack_models", namespace=namespace, phase="Ready") == 1 else None

    samples = await eventually(ready, within=READY_WITHIN, what="llmpack_models to count the model Ready")
    for phase in ("Pending", "Downloading", "Starting", "Degraded", "Error", "Unknown"):
        assert value(samples, "llmpack_models", namespace=namespace, phase=phase) == 0, phase
    assert value(samples, "llmpack_model_condition", **model, type="Ready", status="True") == 1
    assert value(samples, "llmpack_model_condition", **model, type="ModelReady", status="True") == 1
    assert value(samples, "llmpack_model_replicas_ready", **model) == 1
    assert value(samples, "llmpack_model_replicas_desired", **model) == 1
    assert value(samples, "llmpack_model_download_bytes_done", **model) is None  # only while it downloads

    assert total(samples, "llmpack_reconciles_total", kind="LLMModel", result="success") >= 3
    passes = total(samples, "llmpack_reconciles_total")
    assert value(samples, "llmpack_reconcile_duration_seconds_count", kind="LLMModel") == passes
    assert 0 < total(samples, "llmpack_reconcile_duration_seconds_sum") < passes * 5
    assert total(samples, "llmpack_workqueue_wait_seconds_count") >= passes
    assert value(samples, "llmpack_workqueue_depth") is not None
    assert value(samples, "llmpack_watch_streams_failing") == 0
    # The status writes, and the children applied: server-side apply is a PATCH; lists and watches started it.
    assert total(samples, "llmpack_api_requests_total", verb="patch", code="200") + \
        total(samples, "llmpack_api_requests_total", verb="patch", code="201") >= 3
    assert total(samples, "llmpack_api_requests_total", verb="list", code="200") >= 1
    assert total(samples, "llmpack_api_requests_total", verb="watch", code="200") >= 1
    assert total(samples, "process_cpu_seconds_total") > 0


def test_any_other_path_of_the_metrics_port_is_not_found(running_operator: OperatorProcess) -> None:
    import urllib.error

    with pytest.raises(urllib.error.HTTPError, match="404"):
        urllib.request.urlopen(running_operator.metrics_url.replace("/metrics", "/other"), timeout=5)
