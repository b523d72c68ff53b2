"""The chart's Grafana dashboard against a real Prometheus: it scrapes the session operator while a model goes
from Downloading to Ready, and a vLLM v0.11.0 metrics page; then every panel's query, as Grafana would send it,
returns data, and the figures are the ones the cluster showed."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

from lightkube import AsyncClient
from lightkube.resources.coordination_v1 import Lease

from llmpack.operator.metrics import PHASES
from llmpack.wellknown import PROGRESS_ANNOTATION
from llmpack_dev.cluster import LocalCluster, wait_for_webhook
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.prometheus import Prometheus, Target, finite, running, values
from tests.cluster.test_chart import template
from tests.cluster.test_operator_lifecycle import READY_WITHIN
from tests.cluster.waiting import eventually
from tests.vllm_exposition import Replica, serving

RATE_INTERVAL = "10s"  # Grafana's $__rate_interval for a 1 s scrape interval and a short range
GiB, MiB = 1 << 30, 1 << 20


def rendered_dashboard(cluster: LocalCluster) -> dict[str, Any]:
    """The dashboard as the chart ships it: the JSON in its ConfigMap, with metrics.dashboard.enabled."""
    maps = [o for o in template(cluster, "--set", "metrics.dashboard.enabled=true")
            if o["kind"] == "ConfigMap" and o["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(maps) == 1, maps
    return dict(json.loads(maps[0]["data"]["llmpack.json"]))


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(panel title, expression, instant) for every query of every panel, rows' panels included."""
    out = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                out.append((inner["title"], target["expr"], bool(target.get("instant"))))
    return out


def substitute(expr: str, namespace: str) -> str:
    """The template variables as Grafana fills them: this namespace selected, the rate interval."""
    filled = expr.replace("$namespace", namespace).replace("$__rate_interval", RATE_INTERVAL)
    assert "$" not in filled, f"a variable the test does not know: {filled}"
    return filled


async def test_every_panel_of_the_dashboard_shows_data_from_a_real_prometheus(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess,
        tmp_path: Path) -> None:
    dashboard = rendered_dashboard(cluster)
    wait_for_webhook(cluster)  # so that the model's creation is reviewed, and the webhook panels have data
    replica = Replica(model_name="Qwen/Qwen2.5-0.5B-Instruct")
    with serving(replica) as vllm_url, running(
            cluster.bin_dir / "prometheus", tmp_path / "prometheus",
            [Target("llmpack-operator", running_operator.metrics_url, {}),
             # what each model's PodMonitor adds to a vLLM pod's series
             Target("vllm", vllm_url, {"namespace": namespace, "pod": "qwen-7d9f-abcde", "container": "vllm"})],
    ) as prometheus:
        start = time.time()
        await eventually(lambda: _all_up(prometheus), what="Prometheus to scrape the operator and vLLM")
        models.apply(cluster, "qwen", namespace)
        await eventually(lambda: client.get(Lease, "qwen-model-download", namespace=namespace),
                         what="the operator to create the download Lease")
        progress = {"phase": "downloading", "bytes_done": 8 * GiB, "bytes_total": 20 * GiB, "percent": 40,
                    "rate": "200.0Mi/s", "eta": "61s", "holder": "qwen-7d9f-abcde"}
        await client.patch(Lease, "qwen-model-download", namespace=namespace,
                           obj={"metadata": {"annotations": {PROGRESS_ANNOTATION: json.dumps(progress)}}})
        done = f'llmpack_model_download_bytes_done{{namespace="{namespace}", model="qwen"}}'
        await eventually(lambda: _equals(prometheus, done, 8 * GiB), within=20,
                         what="Prometheus to scrape the download's bytes")
        await asyncio.sleep(3)  # a few more samples of the download
        await client.patch(Lease, "qwen-model-download", namespace=namespace, obj={"metadata": {"annotations": {
            PROGRESS_ANNOTATION: json.dumps({"phase": "complete", "bytes_done": 20 * GiB,
                                             "bytes_total": 20 * GiB})}}})
        ready = f'llmpack_models{{namespace="{namespace}", phase="Ready"}}'
        await eventually(lambda: _equals(prometheus, ready, 1), within=READY_WITHIN + 10,
                         what="Prometheus to count the model Ready")
        await asyncio.sleep(2)  # a range query's last step may fall up to a step before its end
        end = time.time()

        empty = []
        for title, expr, instant in panel_queries(dashboard):
            query = substitute(expr, namespace)
            result = prometheus.instant(query, end) if instant else prometheus.range(query, start, end)
            if not finite(result):
                empty.append(f"{title}: {query} -> {result}")
        assert not empty, "panels with no data:\n" + "\n".join(empty)

        variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "namespace")
        match = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["query"]["query"])
        assert match, variable["query"]
        assert namespace in prometheus.api(f"label/{match[2]}/values", **{"match[]": match[1]})

        _the_figures_are_the_clusters(dashboard, prometheus, namespace, start, end)


def _the_figures_are_the_clusters(dashboard: dict[str, Any], prometheus: Prometheus, namespace: str,
                                  start: float, end: float) -> None:
    queries = {title: [substitute(e, namespace) for t, e, _ in panel_queries(dashboard) if t == title]
               for title, _, _ in panel_queries(dashboard)}
    by_phase = {s["metric"]["phase"]: float(s["value"][1])
                for s in prometheus.instant(queries["Models by phase"][0], end)}
    assert by_phase == {phase: 1 if phase == "Ready" else 0 for phase in PHASES}
    downloaded = {s["metric"]["__name__"]: {float(v) for _, v in s["values"]}
                  for q in queries["Downloaded"] for s in prometheus.range(q, start, end)}
    assert downloaded == {"llmpack_model_download_bytes_done": {8 * GiB},
                          "llmpack_model_download_bytes_total": {20 * GiB}}
    assert set(finite(prometheus.range(queries["Download rate"][0], start, end))) == {200 * MiB}
    assert set(finite(prometheus.range(queries["Download ETA"][0], start, end))) == {12 * GiB / (200 * MiB)}
    assert set(finite(prometheus.range(queries["Replicas ready / desired"][0], start, end))) >= {1}
    assert sum(finite(prometheus.range(queries["Reconciles per second"][0], start, end))) > 0
    assert all(v >= 0 for v in finite(prometheus.range(queries["Reconcile errors per second"][0], start, end)))
    assert all(0 < v <= 10 for v in finite(prometheus.range(queries["Reconcile duration p99"][0], start, end)))
    reviews = prometheus.range(queries["Webhook reviews per second"][0], start, end)
    assert max(finite([s for s in reviews if s["metric"]["verdict"] == "allowed"])) > 0  # the model's creation
    assert all(0 < v <= 2 for v in finite(prometheus.range(queries["Webhook review latency p99"][0], start, end)))

    usage = finite(prometheus.range(queries["KV-cache usage"][0], start, end))
    assert all(0.3 <= v <= 0.6 for v in usage)
    p50, p99 = (finite(prometheus.instant(q, end)) for q in queries["Time to first token p50 / p99"])
    assert 0.05 <= p50[0] <= 0.3  # observed: 50-300 ms
    assert p50[0] < p99[0] <= 0.5  # interpolated in the 0.25-0.5 s bucket
    assert all(v > 0 for v in finite(prometheus.range(queries["Generation tokens per second"][0], end - 5, end)))
    assert set(values(prometheus.instant(queries["Requests running"][0], end))) <= set(range(3, 9))


async def _all_up(prometheus: Prometheus) -> bool:
    return prometheus.targets_up() == {"llmpack-operator": "up", "vllm": "up"}


async def _equals(prometheus: Prometheus, query: str, want: float) -> bool:
    return [float(s["value"][1]) for s in prometheus.instant(query)] == [want]
