"""The operator's metrics as Prometheus reads them: what the Store holds at scrape time, with bounded labels."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from llmpack.operator.metrics import PHASES, Metrics, bytes_per_second
from llmpack.operator.store import Store
from llmpack.quantity import format_bytes
from llmpack.wellknown import MODEL_LABEL, PROGRESS_ANNOTATION


def model(namespace: str, name: str, phase: str | None) -> dict[str, object]:
    status = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if phase == "Ready" else "False",
                                              "reason": "x"}],
              "replicas": {"ready": 1 if phase == "Ready" else 0, "desired": 1}} if phase else {}
    return {"metadata": {"namespace": namespace, "name": name}, "status": status}


def lease(namespace: str, name: str, progress: dict[str, object]) -> dict[str, object]:
    return {"metadata": {"namespace": namespace, "name": f"{name}-model-download", "labels": {MODEL_LABEL: name},
                         "annotations": {PROGRESS_ANNOTATION: json.dumps(progress)}}}


def samples(metrics: Metrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(metrics.page()[1].decode()):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_a_scrape_counts_models_by_phase_and_shows_only_running_downloads() -> None:
    store = Store()
    for ns, name, phase in [("a", "m1", "Ready"), ("a", "m2", "Downloading"), ("b", "m3", None)]:
        store.put_model(model(ns, name, phase))
    store.put_child("Lease", lease("a", "m2", {"phase": "downloading", "bytes_done": 3 << 30,
                                              "bytes_total": 10 << 30, "percent": 30, "rate": "1.5Gi/s"}))
    store.put_child("Lease", lease("a", "m1", {"phase": "complete", "bytes_done": 10, "bytes_total": 10}))
    store.put_model(model("b", "m4", "Downloading"))  # checking the files already there: read, not fetched
    store.put_child("Lease", lease("b", "m4", {"phase": "verifying", "bytes_done": 5, "bytes_total": 10,
                                              "model_bytes": 20}))
    got = samples(Metrics(store, depth=lambda: 4, failing=lambda: 1))

    by_phase = {(labels["namespace"], labels["phase"]): v for labels, v in got["llmpack_models"]}
    assert len(by_phase) == 2 * len(PHASES)  # every phase of every namespace with models: series never vanish
    assert (by_phase["a", "Ready"], by_phase["a", "Downloading"], by_phase["b", "Unknown"]) == (1, 1, 1)
    assert sum(by_phase.values()) == 4
    assert got["llmpack_model_download_bytes_done"] == [({"namespace": "a", "model": "m2"}, 3 << 30)]
    assert got["llmpack_model_download_bytes_total"] == [({"namespace": "a", "model": "m2"}, 10 << 30)]
    assert got["llmpack_model_download_rate_bytes_per_second"] == [({"namespace": "a", "model": "m2"}, 1.5 * 2**30)]
    assert ({"namespace": "a", "model": "m1", "type": "Ready", "status": "True"}, 1) in got["llmpack_model_condition"]
    assert got["llmpack_workqueue_depth"] == [({}, 4)]
    assert got["llmpack_watch_streams_failing"] == [({}, 1)]


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from([*PHASES[:-1], None])), max_size=40))
def test_series_grow_with_models_and_namespaces_never_with_events(specs: list[tuple[str, str | None]]) -> None:
    store, metrics = Store(), None
    for i, (ns, phase) in enumerate(specs):
        store.put_model(model(ns, f"m{i}", phase))
    metrics = Metrics(store, depth=lambda: 0, failing=lambda: 0)
    for _ in range(50):  # passes and requests add to counters, not series
        metrics.reconciled("success", 0.001)
    got = samples(metrics)
    assert len(got.get("llmpack_models", [])) == len({ns for ns, _ in specs}) * len(PHASES)
    assert len(got.get("llmpack_model_condition", [])) == sum(1 for _, phase in specs if phase)
    assert [v for labels, v in got["llmpack_reconciles_total"] if labels["result"] == "success"] == [50]


@given(st.integers(min_value=0, max_value=2**62))
def test_the_rate_on_the_lease_reads_back_within_its_rounding(size: int) -> None:
    read = bytes_per_second(f"{format_bytes(size)}/s")
    assert read is not None
    assert abs(read - size) <= max(size * 0.05, 0)


@pytest.mark.parametrize("rate", [None, "", "fast", "12Mi", "Infinity/s", "-/s"])
def test_a_rate_that_is_not_bytes_per_second_is_left_out(rate: str | None) -> None:
    assert bytes_per_second(rate) is None


def test_a_metrics_url_that_is_not_http_host_port_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from llmpack.cli import main

    assert main(["run", "--metrics", "0.0.0.0:8081"]) == 2
    assert capsys.readouterr().err == ("llmpack run: --metrics must look like http://0.0.0.0:8081/metrics, not "
                                       "0.0.0.0:8081\n")


def test_a_metrics_port_out_of_range_names_its_variable(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from llmpack.cli import main

    monkeypatch.setenv("LLMPACK_METRICS_PORT", "70000")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmpack run: environment variable LLMPACK_METRICS_PORT:")
    assert err.count("\n") == 1


async def test_each_pass_is_counted_by_its_result_and_a_shutdown_is_not_a_pass() -> None:
    import asyncio

    from llmpack.config import Config
    from llmpack.operator.runner import Operator, metered

    class Outcomes:
        """Stands in for the Reconciler: what each model's pass ends with."""

        async def reconcile(self, key: tuple[str, str]) -> bool:
            if key[1] == "broken":
                raise RuntimeError("the API server went away")
            if key[1] == "slow":
                await asyncio.sleep(3600)
            return key[1] == "blocked"

    operator = Operator(Config(), workers=2)
    metrics = metered(operator)
    operator.reconciler = Outcomes()  # type: ignore[assignment]
    operator.queue.waited = metrics.waits.observe
    for name in ("fine", "blocked", "broken", "slow"):
        operator.queue.add(("ns", name))
    workers = [asyncio.create_task(operator._work()) for _ in range(2)]
    await asyncio.sleep(0.2)
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)

    got = {labels["result"]: v for labels, v in samples(metrics)["llmpack_reconciles_total"]}
    assert got == {"success": 1, "problem": 1, "error": 1}
    assert [v for _, v in samples(metrics)["llmpack_workqueue_wait_seconds_count"]] == [4]
