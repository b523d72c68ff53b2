"""The operator's pure helpers: 'already holds' comparison, PVC guards, and the work queue."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from llmpack.assess.diff import holds, written_in_another_version
from llmpack.assess.guards import pvc_problem
from llmpack.assess.status import job_state
from llmpack.operator.queue import WorkQueue
from llmpack.operator.store import Store
from llmpack.wellknown import MODEL_LABEL


def test_server_defaults_and_foreign_labels_do_not_count_as_drift() -> None:
    desired = {"spec": {"containers": [{"name": "vllm", "image": "v:1"}]}, "metadata": {"labels": {"a": "1"}}}
    observed = {"spec": {"containers": [{"name": "vllm", "image": "v:1", "imagePullPolicy": "IfNotPresent"}]},
                "metadata": {"labels": {"a": "1", "other": "x"}, "uid": "u"}}
    assert holds(observed, desired)


def test_changed_fields_and_extra_list_items_are_drift() -> None:
    assert not holds({"spec": {"replicas": 2}}, {"spec": {"replicas": 3}})
    assert not holds({"args": ["a", "b", "c"]}, {"args": ["a", "b"]})
    assert not holds({}, {"spec": {}})


def test_quantities_compare_by_value() -> None:
    assert holds({"cpu": "500m"}, {"cpu": "0.5"})
    assert holds({"storage": "32212254720"}, {"storage": "30Gi"})
    assert not holds({"storage": "20Gi"}, {"storage": "30Gi"})
    assert not holds({"enabled": 1}, {"enabled": True})


def _pvc(size: str, storage_class: str | None = None, mode: str = "ReadWriteOnce") -> dict[str, object]:
    spec: dict[str, object] = {"accessModes": [mode], "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"metadata": {"name": "m-model-storage"}, "spec": spec}


def test_a_pvc_is_never_shrunk() -> None:
    problem = pvc_problem(_pvc("30Gi"), _pvc("80Gi"))
    assert problem is not None
    assert problem.reason == "StorageShrinkRefused"
    assert "80Gi" in problem.message


def test_a_pvc_may_grow() -> None:
    assert pvc_problem(_pvc("100Gi"), _pvc("80Gi")) is None
    assert pvc_problem(_pvc("80Gi"), None) is None


def test_class_and_access_mode_changes_are_refused_with_advice() -> None:
    problem = pvc_problem(_pvc("80Gi", "efs"), _pvc("80Gi", "gp3"))
    assert problem is not None
    assert "Revert storageClassName" in problem.message
    problem = pvc_problem(_pvc("80Gi", mode="ReadWriteMany"), _pvc("80Gi"))
    assert problem is not None
    assert problem.reason == "AccessModeChangeRefused"
    assert pvc_problem(_pvc("80Gi"), _pvc("80Gi", "standard")) is None  # the cluster default filled it in


async def test_queue_coalesces_repeated_keys_and_reruns_a_key_changed_while_active() -> None:
    q = WorkQueue(pace=0)
    for _ in range(5):
        q.add(("ns", "a"))
    q.add(("ns", "b"))
    assert len(q) == 2
    key = await q.get()
    q.add(key)  # changed while being reconciled: must run again afterwards, not concurrently
    assert len(q) == 1
    q.done(key)
    assert len(q) == 2


@pytest.mark.timeout(10)
async def test_queue_paces_a_key_so_a_burst_of_events_after_a_pass_makes_one_pass() -> None:
    q = WorkQueue(pace=0.3)
    key, other = ("ns", "a"), ("ns", "b")
    q.add(key)
    await q.get()  # a model's first pass is not delayed
    q.done(key)
    started = time.monotonic()
    for _ in range(5):  # a pod's steps and our own status echo, right after the pass
        q.add(key)
    q.add(other)
    assert len(q) == 1  # another model is not held back
    assert await q.get() == other
    assert await asyncio.wait_for(q.get(), 2) == key
    assert time.monotonic() - started >= 0.29
    assert len(q) == 0  # the five events made one pass


async def test_a_new_model_is_reconciled_before_models_already_started() -> None:
    q = WorkQueue(pace=0)
    started, new = ("ns", "started"), ("ns", "new")
    q.add(started)
    q.done(await q.get())
    q.add(started)  # its pod moved
    q.add(new)  # applied just after
    assert [await q.get(), await q.get()] == [new, started]


@pytest.mark.timeout(10)
async def test_queue_backs_off_exponentially_and_resets_on_success() -> None:
    q = WorkQueue(base_delay=0.01, max_delay=0.04, pace=0)
    key = ("ns", "a")
    q.add(key)
    delays = []
    for _ in range(4):
        await q.get()
        delays.append(q.done(key, failed=True))
    assert delays == [0.01, 0.02, 0.04, 0.04]
    await asyncio.wait_for(q.get(), 1)
    assert q.done(key) is None
    capped = [q.done(key, failed=True, cap=0.02) for _ in range(3)]
    assert capped == [0.01, 0.02, 0.02]  # a recheck cap keeps waits on the outside world short


async def test_models_of_a_namespace_being_deleted_are_left_alone_until_a_new_one_appears() -> None:
    from llmpack.config import Config
    from llmpack.operator.reconcile import Reconciler
    from llmpack.operator.store import Store

    store = Store()
    reconciler = Reconciler(None, store, Config())  # type: ignore[arg-type]  # no call may reach the API
    store.put_model({"metadata": {"namespace": "ns", "name": "old", "creationTimestamp": "2026-01-01T00:00:00Z"}})
    reconciler._terminating["ns"] = "2026-01-01T00:00:05Z"  # as learned from a "being terminated" refusal
    assert await reconciler.reconcile(("ns", "old")) is False  # nothing attempted, nothing retried
    store.put_model({"metadata": {"namespace": "ns", "name": "new", "creationTimestamp": "2026-01-01T00:00:09Z"}})
    assert reconciler._in_terminating_namespace(("ns", "new")) is False  # a re-created namespace is served
    assert "ns" not in reconciler._terminating


def test_the_store_keeps_objects_without_their_managed_fields() -> None:
    store = Store()
    body = {"kind": "Service", "metadata": {"name": "qwen", "namespace": "ns", "labels": {MODEL_LABEL: "qwen"},
                                            "managedFields": [{"manager": "llmpack", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"ports": [{"port": 8000}]}}
    assert store.put_child("Service", body) == ("ns", "qwen")
    kept = store.child(("ns", "qwen"), "Service", "qwen")
    assert kept is not None
    assert "managedFields" not in kept["metadata"]
    assert kept["spec"] == body["spec"]
    assert kept["metadata"]["labels"] == {MODEL_LABEL: "qwen"}
    assert "managedFields" in body["metadata"]  # the caller's object is not changed


def test_a_route_we_wrote_in_an_older_version_is_written_again_in_the_newer_one_and_then_left_alone() -> None:
    group = "aigateway.envoyproxy.io"
    spec = {"parentRefs": [{"name": "llm-external"}]}

    def route(version: str, *writers: tuple[str, str]) -> dict[str, Any]:
        return {"apiVersion": f"{group}/{version}", "kind": "AIGatewayRoute", "spec": spec,
                "metadata": {"name": "qwen-external", "namespace": "ns", "labels": {MODEL_LABEL: "qwen"},
                             "managedFields": [{"manager": m, "apiVersion": f"{group}/{v}", "operation": "Apply",
                                                "fieldsV1": {"f:spec": {}}} for m, v in writers]}}

    store = Store()
    # The gateway now serves v1beta1 and its watch delivers our route in it; we last wrote it in v1alpha1.
    store.put_child("AIGatewayRoute", route("v1beta1", ("llmpack", "v1alpha1"), ("ai-gateway-controller", "v1beta1")))
    kept = store.child(("ns", "qwen"), "AIGatewayRoute", "qwen-external")
    assert kept is not None
    assert kept["metadata"]["managedFields"] == [{"manager": "llmpack", "apiVersion": f"{group}/v1alpha1"}]
    desired = {"apiVersion": f"{group}/v1beta1", "kind": "AIGatewayRoute", "metadata": {"name": "qwen-external"},
               "spec": spec}
    assert holds(kept, desired)  # the same fields in both versions ...
    assert written_in_another_version(kept, desired)  # ... yet it is written again, in v1beta1
    store.put_child("AIGatewayRoute", route("v1beta1", ("llmpack", "v1beta1")))  # what that apply answers
    assert not written_in_another_version(store.child(("ns", "qwen"), "AIGatewayRoute", "qwen-external") or {},
                                          desired)
    # Kinds written in one version keep no managedFields, and are never written again for this.
    assert not written_in_another_version({"metadata": {}}, desired)


def test_a_pod_is_kept_with_only_what_the_phase_ladder_reads_and_tells_the_same_story() -> None:
    from llmpack.assess.status import Observed, compute
    from llmpack.render.meta import identity
    from llmpack.wellknown import IDENTITY_ANNOTATION
    from tests.unit.factories import model

    m = model()
    full = {"kind": "Pod", "metadata": {"name": "qwen-1", "namespace": "ns", "labels": {MODEL_LABEL: "qwen"},
                                        "annotations": {IDENTITY_ANNOTATION: identity(m)}, "managedFields": [{}]},
            "spec": {"initContainers": [{"name": "model-downloader", "image": "d", "args": ["x"] * 50}],
                     "containers": [{"name": "vllm", "image": "v", "env": [{"name": "E", "value": "v"}] * 50}],
                     "volumes": [{"name": "model-storage"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}],
                       "initContainerStatuses": [{"name": "model-downloader",
                                                  "state": {"terminated": {"exitCode": 0}}}],
                       "containerStatuses": [{"name": "vllm", "ready": True, "restartCount": 0}]}}
    store = Store()
    store.put_child("Pod", full)
    kept = store.child(("ns", "qwen"), "Pod", "qwen-1")
    assert kept is not None
    assert kept["spec"] == {"initContainers": [{"name": "model-downloader"}]}
    assert "managedFields" not in kept["metadata"]
    assert "podIP" not in kept["status"]
    assert compute(m, Observed(pods=[kept]), None) == compute(m, Observed(pods=[full]), None)


def test_a_kept_pod_still_says_how_old_it_is_so_a_stuck_download_pod_is_reported() -> None:
    """Without its creationTimestamp every kept pod is 0 s old: the grace period never ends (no
    DownloadCannotStart) and the newest of a Job's pods is picked at random."""
    import datetime

    from llmpack.assess.download import job_pod
    from llmpack.operator.causes import GRACE, age

    def job_pod_created(name: str, created: str) -> dict[str, object]:
        return {"metadata": {"name": name, "namespace": "ns", "creationTimestamp": created,
                             "labels": {MODEL_LABEL: "qwen", "batch.kubernetes.io/job-name": "qwen-dl"}},
                "status": {"phase": "Pending"}}

    store = Store()
    store.put_child("Pod", job_pod_created("qwen-dl-old", "2026-11-30T08:00:00Z"))
    store.put_child("Pod", job_pod_created("qwen-dl-new", "2026-11-30T08:05:00Z"))
    kept = [store.child(("ns", "qwen"), "Pod", n) or {} for n in ("qwen-dl-old", "qwen-dl-new")]
    later = datetime.datetime(2026, 11, 30, 8, 6, tzinfo=datetime.UTC)
    assert age(kept[1], later) == 60.0 > GRACE
    assert (job_pod(kept, "qwen-dl") or {})["metadata"]["name"] == "qwen-dl-new"


async def test_a_waiting_pvc_is_looked_at_again_when_the_api_server_would_next_be_asked() -> None:
    """A pass for a waiting PVC or pod learns something new only once its grace period is over, then each
    RECHECK seconds: the reconciler schedules its next look for then, not on a 1, 2, 4 s back-off."""
    import datetime

    from llmpack.operator.causes import GRACE, RECHECK, Causes

    def pvc(uid: str, age: float) -> dict[str, Any]:
        created = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=age)
        return {"metadata": {"name": f"m-{uid}", "namespace": "ns", "uid": uid,
                             "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ")}}

    causes = Causes(None)  # type: ignore[arg-type]  # nothing is asked of the API server here
    assert GRACE - 1.5 <= causes.due(pvc("young", 0)) <= GRACE
    assert causes.due(pvc("old", 3600)) == 1.0  # never asked: at once (the pass that asks is due)
    await causes._remembered(("pvc", "old"), lambda: asyncio.sleep(0, result=None))
    assert RECHECK - 1 <= causes.due(pvc("old", 3600)) <= RECHECK
    assert causes.due(pvc("other", 3600)) == 1.0


def test_a_kept_pod_pending_on_its_node_is_still_seen_waiting_there() -> None:
    """Its Events (FailedMount, a missing ConfigMap) are asked for only when it is placed and Pending: the
    node it was placed on must survive the Store's trimming, or DownloadCannotStart never shows."""
    from llmpack.assess.download import waits_on_node

    placed = {"metadata": {"name": "qwen-dl-x", "namespace": "ns", "labels": {MODEL_LABEL: "qwen"}},
              "spec": {"nodeName": "gpu-1", "containers": [{"name": "model-downloader", "image": "d"}]},
              "status": {"phase": "Pending"}}
    store = Store()
    store.put_child("Pod", placed)
    kept = store.child(("ns", "qwen"), "Pod", "qwen-dl-x") or {}
    assert waits_on_node(placed)
    assert waits_on_node(kept)
    store.put_child("Pod", {**placed, "spec": {"containers": placed["spec"]["containers"]}})  # type: ignore[index]
    assert not waits_on_node(store.child(("ns", "qwen"), "Pod", "qwen-dl-x") or {})  # not placed yet


def test_a_kind_whose_crd_went_is_forgotten_from_the_store() -> None:
    store = Store()
    for kind in ("InferencePool", "Service"):
        store.put_child(kind, {"metadata": {"name": "qwen", "namespace": "ns", "labels": {MODEL_LABEL: "qwen"}}})
    store.drop_kind("InferencePool")
    assert store.child(("ns", "qwen"), "InferencePool", "qwen") is None
    assert store.child(("ns", "qwen"), "Service", "qwen") is not None


def test_json_logs_are_one_object_per_line_naming_the_model() -> None:
    import json
    import logging

    from llmpack.operator.logs import JsonFormatter

    record = logging.LogRecord("llmpack.reconcile", logging.INFO, __file__, 1, "%s: %s -> %s", ("ns/qwen", "a", "b"),
                               None)
    record.model = "ns/qwen"
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line) | {"time": "t"} == {"time": "t", "level": "INFO", "logger": "llmpack.reconcile",
                                                  "message": "ns/qwen: a -> b", "model": "ns/qwen"}


async def test_the_health_endpoint_answers_ok_and_names_failing_watches() -> None:
    import socket

    from llmpack.operator import health

    class Operator:
        def __init__(self) -> None:
            self.failing: list[str] = []

        def health(self) -> list[str]:
            return self.failing

    async def get(port: int, path: str) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        answer = await reader.read()
        writer.close()
        return answer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    operator = Operator()
    server = await health.serve(f"http://127.0.0.1:{port}/healthz", operator)
    try:
        assert (await get(port, "/healthz")).startswith(b"HTTP/1.1 200 OK")
        operator.failing = ["watch pods *: 4 failures in a row"]
        assert (await get(port, "/healthz")).endswith(b"ok\nwatch pods *: 4 failures in a row\n")
        assert (await get(port, "/metrics")).startswith(b"HTTP/1.1 404")
    finally:
        server.close()
        await server.wait_closed()


def test_a_health_url_that_is_not_http_host_port_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from llmpack.cli import main

    assert main(["run", "--health", "0.0.0.0:8080"]) == 2
    assert capsys.readouterr().err == ("llmpack run: --health must look like http://0.0.0.0:8080/healthz, not "
                                       "0.0.0.0:8080\n")


def test_an_event_that_changes_only_what_is_not_kept_wakes_no_reconcile() -> None:
    def job(version: str, status: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "Job", "metadata": {"name": "qwen-dl", "namespace": "ns", "labels": {MODEL_LABEL: "qwen"},
                                            "resourceVersion": version}, "spec": {"backoffLimit": 6}, "status": status}

    store = Store()
    assert store.put_child("Job", job("1", {})) == ("ns", "qwen")  # what our apply was answered
    assert store.wrote(("ns", "qwen"))
    assert not store.wrote(("ns", "qwen"))  # asked once, then forgotten
    assert store.take("Job", job("1", {})) is None  # the watch's echo of that apply
    assert store.take("Job", job("2", {"active": 1, "ready": 1})) is None  # counts no reconcile reads
    met = {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": "2026-11-30T10:00:00Z"}
    assert store.take("Job", job("3", {"succeeded": 1, "conditions": [met]})) is None  # on the way to Complete
    done = {"succeeded": 1, "conditions": [met, {"type": "Complete", "status": "True",
                                                 "lastTransitionTime": "2026-11-30T10:00:01Z"}]}
    assert store.take("Job", job("4", done)) == ("ns", "qwen")  # what job_state reads changed
    assert job_state(store.child(("ns", "qwen"), "Job", "qwen-dl")) == "succeeded"
    assert not store.wrote(("ns", "qwen"))  # a watch event is not our write
    probed = {**done, "conditions": [met, {**done["conditions"][1], "lastProbeTime": "2026-11-30T10:00:05Z"}]}
    assert store.take("Job", job("5", probed)) is None
    failed = {"failed": 1, "conditions": [{"type": "FailureTarget", "status": "True"}]}
    assert store.take("Job", job("6", failed)) == ("ns", "qwen")  # FailureTarget alone: still running to job_state
    assert job_state(store.child(("ns", "qwen"), "Job", "qwen-dl")) == "running"
    ended = {"failed": 1, "conditions": [*failed["conditions"], {"type": "Failed", "status": "True"}]}
    assert store.take("Job", job("7", ended)) == ("ns", "qwen")
    assert job_state(store.child(("ns", "qwen"), "Job", "qwen-dl")) == "failed"


def test_a_listed_child_with_its_fields_in_another_order_is_the_same_and_wakes_no_reconcile() -> None:
    watched = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "qwen", "namespace": "ns",
                                                                    "labels": {MODEL_LABEL: "qwen", "a": "1"}},
               "spec": {"ports": [{"port": 8000, "name": "http"}]}}
    listed = {"metadata": {"labels": {"a": "1", MODEL_LABEL: "qwen"}, "namespace": "ns", "name": "qwen"},
              "spec": {"ports": [{"name": "http", "port": 8000}]}, "apiVersion": "v1", "kind": "Service"}
    store = Store()
    assert store.take("Service", watched) == ("ns", "qwen")
    assert store.take("Service", listed) is None  # the relist after a 410 changes nothing
    assert store.take("Service", {**listed, "spec": {"ports": [{"name": "http", "port": 8001}]}}) == ("ns", "qwen")


def test_a_child_read_before_it_changed_is_read_again_as_it_now_is() -> None:
    def config_map(value: str) -> dict[str, Any]:
        return {"kind": "ConfigMap", "metadata": {"name": "qwen", "namespace": "ns", "labels": {MODEL_LABEL: "qwen"}},
                "data": {"a": value}}

    store = Store()
    store.put_child("ConfigMap", config_map("1"))
    assert (store.child(("ns", "qwen"), "ConfigMap", "qwen") or {})["data"] == {"a": "1"}
    assert store.take("ConfigMap", config_map("2")) == ("ns", "qwen")
    assert (store.child(("ns", "qwen"), "ConfigMap", "qwen") or {})["data"] == {"a": "2"}
    assert [c["data"] for c in store.of_kind(("ns", "qwen"), "ConfigMap")] == [{"a": "2"}]
    store.drop_child("ConfigMap", config_map("2"))
    assert store.child(("ns", "qwen"), "ConfigMap", "qwen") is None


def test_a_stream_whose_kind_went_tells_the_store_each_child_is_gone() -> None:
    from typing import cast

    import httpx2

    from llmpack.kinds import INFERENCE_POOL
    from llmpack.operator.watch import Source, Stream

    store = Store()
    body = {"kind": "InferencePool", "metadata": {"name": "qwen", "namespace": "ns", "resourceVersion": "7",
                                                  "labels": {MODEL_LABEL: "qwen", "other": "x"}}, "spec": {"a": 1}}
    stream = Stream(cast(httpx2.AsyncClient, None), Source(INFERENCE_POOL, "ns"),
                    lambda type_, obj: store.drop_child("InferencePool", obj) if type_ == "DELETED"
                    else store.take("InferencePool", obj))
    stream._event({"type": "ADDED", "object": body})
    assert store.child(("ns", "qwen"), "InferencePool", "qwen") is not None
    stream.forget()  # the CRD was deleted
    assert store.child(("ns", "qwen"), "InferencePool", "qwen") is None
    assert not store.children  # nothing left of the model's children


def test_a_model_is_read_back_as_its_last_event_said_and_not_at_all_once_deleted() -> None:
    def model(generation: int) -> dict[str, Any]:
        return {"kind": "LLMModel", "metadata": {"name": "qwen", "namespace": "ns", "generation": generation,
                                                 "managedFields": [{"manager": "kubectl"}]}, "spec": {"replicas": 1}}

    store = Store()
    store.put_model(model(1))
    assert store.models[("ns", "qwen")]["metadata"] == {"name": "qwen", "namespace": "ns", "generation": 1}
    store.put_model(model(2))
    assert store.models.get(("ns", "qwen"), {})["metadata"]["generation"] == 2
    assert list(store.models) == [("ns", "qwen")]
    assert store.owns(("ns", "qwen"))
    store.drop_model(model(2))
    assert store.models.get(("ns", "qwen")) is None
    assert not store.owns(("ns", "qwen"))
    assert len(store.models) == 0


def test_the_echo_of_our_own_status_write_wakes_no_pass_and_anything_else_does() -> None:
    """A model's watch event that only brings back the status just written needs no pass (one per status
    write, ~9 a model at 200); a new generation, a label, a status someone else wrote, each still does."""
    from tests.unit.factories import body as model_body

    store = Store()
    body = {**model_body(name="qwen", namespace="ns"), "status": {"phase": "Pending"}}
    body["metadata"] = {**body["metadata"], "resourceVersion": "1", "generation": 1}
    store.put_model(body)
    written = {"phase": "Downloading", "conditions": [{"type": "Ready", "status": "False"}]}
    store.wrote_status(("ns", "qwen"), written)

    def event(**meta: Any) -> dict[str, Any]:
        return {**body, "metadata": {**body["metadata"], "resourceVersion": "2", **meta}, "status": written}

    assert store.echoes(event())
    assert not store.echoes(event(generation=2))
    assert not store.echoes(event(labels={"team": "a"}))
    assert not store.echoes({**event(), "status": {**written, "phase": "Ready"}})
    store.drop_model(event())
    assert not store.echoes(event())


def test_a_new_key_secret_wakes_only_the_siblings_whose_policies_name_the_namespace_s_secrets() -> None:
    """Each model's new Secret used to wake every other model of its namespace (200 models: ~39,000 wakes).
    Only siblings that hold a SecurityPolicy, or whose pass is running, can name the Secret; the others read
    the namespace's Secrets when their policy opens."""
    from llmpack.config import Config
    from llmpack.kinds import SECURITY_POLICY
    from llmpack.operator.reconcile import Reconciler

    store, woken = Store(), []
    reconciler = Reconciler(None, store, Config(), wake=woken.append)  # type: ignore[arg-type]  # no API call
    for name in ("new", "routed", "passing", "starting"):
        store.put_model({"metadata": {"namespace": "ns", "name": name}})
    store.put_model({"metadata": {"namespace": "other", "name": "routed"}})
    for ns in ("ns", "other"):
        store.put_child(SECURITY_POLICY.kind, {"metadata": {"namespace": ns, "name": "routed-external-auth",
                                                            "labels": {MODEL_LABEL: "routed"}}})
    reconciler._passing.add(("ns", "passing"))
    reconciler.keys.created(("ns", "new"))
    assert woken == []  # no SecurityPolicy CRD: no policy names any Secret
    store.crds.add(SECURITY_POLICY.crd)
    reconciler.keys.created(("ns", "new-2"))
    assert sorted(woken) == [("ns", "passing"), ("ns", "routed")]
    assert reconciler.keys.secrets("ns") == {"new-api-keys", "new-2-api-keys"}
