"""What `serving.monitoring.enabled` adds: a Prometheus Operator PodMonitor `<m>` (the Serving Pack's name)
that scrapes vLLM's `/metrics` on its `http` port (8000). Owned by the model, and applied only once the
PodMonitor CRD is established (render/plan.py); the pods' prometheus.io annotations serve Prometheus
setups that discover by annotation instead.

The selector is the vLLM pods' own (instance and `app.kubernetes.io/name: llmmodel`), so the endpoint
picker and the download Job's pod, which share the instance label, are not scraped as vLLM.
"""

from __future__ import annotations

from typing import Any

from llmpack.api import LLMModel, names
from llmpack.kinds import POD_MONITOR
from llmpack.render.meta import metadata, selector_labels

METRICS_PATH = "/metrics"
INTERVAL = "30s"


def pod_monitor(model: LLMModel) -> dict[str, Any]:
    return {
        "apiVersion": POD_MONITOR.api_version,
        "kind": POD_MONITOR.kind,
        "metadata": metadata(model, names.pod_monitor(model.name)),
        "spec": {
            "selector": {"matchLabels": selector_labels(model)},
            "podMetricsEndpoints": [{"port": "http", "path": METRICS_PATH, "interval": INTERVAL}],
        },
    }
