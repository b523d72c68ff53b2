"""The chart's Grafana dashboard (charts/llmpack/dashboards/llmpack.json), read as Grafana reads it: every query
goes to the data source the user picks, names only series that exist (the operator's, vLLM's of the version our
serving image runs), and no two panels overlap. tests/cluster/test_dashboard.py runs every query against a
real Prometheus."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from llmpack.config import DEFAULT_SERVING_IMAGE
from llmpack.operator.metrics import Metrics
from llmpack.operator.store import Store
from llmpack.wellknown import MODEL_LABEL, PROGRESS_ANNOTATION
from tests.vllm_exposition import SERIES as VLLM_SERIES
from tests.vllm_exposition import Replica

DASHBOARD = Path(__file__).resolve().parents[2] / "charts" / "llmpack" / "dashboards" / "llmpack.json"
VLLM_VERSION = "v0.11.0"
NAME = re.compile(r"\b(?:llmpack_|vllm:)[a-z_:]+")


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for top in board["panels"] for p in [top, *top.get("panels", [])]]


def exprs(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in panels(board) for t in p.get("targets", [])] + [
        v["query"]["query"] for v in board["templating"]["list"] if v["type"] == "query"]


def test_every_query_goes_to_the_data_source_the_user_picks() -> None:
    board = dashboard()
    picked = {"type": "prometheus", "uid": "${datasource}"}
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    for panel in panels(board):
        if panel["type"] != "row":
            assert panel["datasource"] == picked, panel["title"]
            assert all(t["datasource"] == picked for t in panel["targets"]), panel["title"]
    assert variables["namespace"]["datasource"] == picked
    assert "uid" not in json.dumps(board).replace('"uid": "${datasource}"', "").replace('"uid": "llmpack"', "")


def test_the_vllm_panels_use_the_names_of_the_version_our_serving_image_runs() -> None:
    assert DEFAULT_SERVING_IMAGE.endswith(f":{VLLM_VERSION}"), (
        "the serving image moved: check the dashboard's vLLM metric names against that version's "
        "vllm/v1/metrics/loggers.py, then update VLLM_VERSION, the dashboard's description and "
        "tests/vllm_exposition.py")
    board = dashboard()
    assert f"https://docs.vllm.ai/en/{VLLM_VERSION}/usage/metrics.html" in board["description"]
    named = {n for e in exprs(board) for n in NAME.findall(e) if n.startswith("vllm:")}
    page = Replica("m").page().decode()
    exposed = {line.split("{")[0].split(" ")[0] for line in page.splitlines() if not line.startswith("#")}
    assert named <= exposed, named - exposed
    assert {n.removesuffix("_bucket").removesuffix("_total") for n in named} == set(VLLM_SERIES)
    assert "vllm:gpu_cache_usage_perc" not in named  # hidden in v0.11.0 (shown only with --show-hidden-metrics)


def test_every_operator_series_it_reads_is_on_the_operators_page() -> None:
    store = Store()
    store.put_model({"metadata": {"namespace": "a", "name": "m"}, "status": {
        "phase": "Downloading", "replicas": {"ready": 0, "desired": 1}}})
    store.put_child("Lease", {"metadata": {"namespace": "a", "name": "m-model-download", "labels": {MODEL_LABEL: "m"},
                                           "annotations": {PROGRESS_ANNOTATION: json.dumps(
                                               {"phase": "downloading", "bytes_done": 1, "bytes_total": 2,
                                                "rate": "1Mi/s"})}}})
    metrics = Metrics(store, depth=lambda: 0, failing=lambda: 0)
    metrics.reconciled("success", 0.01)
    metrics.reviewed("allowed", 0.001)
    metrics.requests.labels("get", "200").inc()
    page = metrics.page()[1].decode()
    exposed = {line.split("{")[0].split(" ")[0] for line in page.splitlines() if not line.startswith("#")}
    named = {n for e in exprs(dashboard()) for n in NAME.findall(e) if n.startswith("llmpack_")}
    assert named <= exposed, named - exposed


def test_no_two_panels_overlap_and_each_has_its_own_id() -> None:
    board = dashboard()
    cells: dict[tuple[int, int], str] = {}
    for panel in panels(board):
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[x, y]}"
                cells[x, y] = panel["title"]
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))
