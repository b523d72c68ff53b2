"""The phase and conditions an LLMModel reports, from what its pods and PVC show (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmpack.api import Download, LLMModel, Phase
from llmpack.assess.report import Problem, Report
from llmpack.assess.routing import Routes, refusal
from llmpack.assess.status import Observed, compute, only_details_differ, settle
from llmpack.assess.storage import Unbound
from llmpack.render.download_job import job_name
from llmpack.render.meta import identity
from llmpack.wellknown import IDENTITY_ANNOTATION
from tests.unit.factories import model

BOUND = {"metadata": {"name": "qwen-model-storage"}, "status": {"phase": "Bound"}}
PENDING_PVC = {"metadata": {"name": "qwen-model-storage"}, "status": {"phase": "Pending"}}


def pod(m: LLMModel, *, init: str | None = "done", ready: bool = False, restarts: int = 0,
        identity_: str | None = None, deleting: bool = False) -> dict[str, Any]:
    init_state: dict[str, Any] = {
        "running": {"running": {"startedAt": "t"}},
        "done": {"terminated": {"exitCode": 0}},
        "failed": {"terminated": {"exitCode": 3}},
        "waiting": {"waiting": {"reason": "PodInitializing"}},
    }.get(init or "", {})
    meta: dict[str, Any] = {"name": "p", "annotations": {IDENTITY_ANNOTATION: identity_ or identity(m)}}
    if deleting:
        meta["deletionTimestamp"] = "t"
    return {
        "metadata": meta,
        "spec": {"initContainers": [{"name": "model-downloader"}] if init else []},
        "status": {
            "initContainerStatuses": [{"name": "model-downloader", "state": init_state}] if init else [],
            "containerStatuses": [{"name": "vllm", "ready": ready, "restartCount": restarts}],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def job_pod(m: LLMModel, phase_: str, *, node: str | None = "cpu-node-1", waiting: str | None = None,
            unschedulable: str | None = None) -> dict[str, Any]:
    """The download Job's pod, as the Job controller labels it and the scheduler and kubelet report it."""
    status: dict[str, Any] = {"phase": phase_}
    if waiting:
        status["containerStatuses"] = [{"name": "model-download",
                                        "state": {"waiting": {"reason": waiting, "message": f"{waiting} detail"}}}]
    if unschedulable:
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                 "message": unschedulable}]
    return {"metadata": {"name": "qwen-dl-x", "creationTimestamp": "2026-01-01T00:00:00Z",
                         "labels": {"batch.kubernetes.io/job-name": job_name(m)}},
            "spec": {"nodeName": node} if node else {}, "status": status}


def phase(m: LLMModel, observed: Observed) -> Phase | None:
    return compute(m, observed, None).phase


def conditions(m: LLMModel, observed: Observed) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status.value, c.reason) for c in compute(m, observed, None).conditions}


def test_unbound_storage_is_pending() -> None:
    m = model()
    assert phase(m, Observed(pvc=PENDING_PVC)) == Phase.PENDING
    assert conditions(m, Observed(pvc=PENDING_PVC))["StorageReady"] == ("False", "Pending")


def test_running_downloader_is_downloading_then_starting_then_ready() -> None:
    m = model()
    assert phase(m, Observed(pvc=BOUND, pods=[pod(m, init="running")])) == Phase.DOWNLOADING
    assert phase(m, Observed(pvc=BOUND, pods=[pod(m, init="done")])) == Phase.STARTING
    observed = Observed(pvc=BOUND, pods=[pod(m, ready=True)])
    assert phase(m, observed) == Phase.READY
    assert conditions(m, observed) == {"Ready": ("True", "Ready"), "StorageReady": ("True", "Bound"),
                                       "ModelReady": ("True", "Present"), "Available": ("True", "Serving")}


def test_after_the_download_job_the_model_is_starting_until_ready_and_never_pending_or_downloading_again() -> None:
    m = model()
    done = Download(percent=100, bytes_done=10, bytes_total=10)
    story = [
        Observed(pvc=BOUND, job="running", pods=[job_pod(m, "Running")]),
        Observed(pvc=BOUND, job="succeeded", download=done),  # no serving pod yet
        Observed(pvc=BOUND, job="succeeded", download=done, pods=[pod(m, init="waiting")]),  # being scheduled
        Observed(pvc=BOUND, job="succeeded", download=done, pods=[pod(m, init="running")]),  # confirms the weights
        Observed(pvc=BOUND, job="succeeded", download=done, pods=[pod(m, init="done")]),
        Observed(pvc=BOUND, job="succeeded", download=done, pods=[pod(m, ready=True)]),
    ]
    assert [phase(m, o) for o in story] == [Phase.DOWNLOADING, *[Phase.STARTING] * 4, Phase.READY]
    assert [conditions(m, o)["ModelReady"][0] for o in story] == ["False", *["True"] * 5]


def test_a_pod_that_fetches_again_after_the_job_is_downloading() -> None:
    m = model()
    again = Observed(pvc=BOUND, job="succeeded", download=Download(percent=40), pods=[pod(m, init="running")])
    assert phase(m, again) == Phase.DOWNLOADING  # the volume lost its weights: the world went backwards


def test_only_a_download_job_claims_that_no_gpu_is_held() -> None:
    m = model()
    by_job = compute(m, Observed(pvc=BOUND, job="running", pods=[job_pod(m, "Running")]), None)
    assert by_job.phase == Phase.DOWNLOADING
    assert "no GPU is held" in by_job.conditions[0].message
    small = model({"model": {"storage": {"type": "emptyDir"}}})
    in_pod = compute(small, Observed(pods=[pod(small, init="running")]), None)
    assert in_pod.phase == Phase.DOWNLOADING
    assert "GPU" not in in_pod.conditions[0].message  # that pod holds its GPUs while it downloads


def test_some_replicas_ready_is_degraded() -> None:
    m = model({"serving": {"replicas": 3}})
    observed = Observed(pvc=BOUND, pods=[pod(m, ready=True), pod(m), pod(m)])
    status = compute(m, observed, None)
    assert status.phase == Phase.DEGRADED
    assert status.replicas is not None
    assert (status.replicas.ready, status.replicas.desired) == (1, 3)


def test_a_rollout_to_new_weights_downloads_again_and_old_pods_do_not_count() -> None:
    m = model({"model": {"revision": "v2"}})
    old = pod(m, ready=True, identity_="0ld1dent1ty")
    assert phase(m, Observed(pvc=BOUND, pods=[old, pod(m, init="running")])) == Phase.DOWNLOADING


def test_terminating_pods_do_not_count_as_ready() -> None:
    m = model()
    assert phase(m, Observed(pvc=BOUND, pods=[pod(m, ready=True, deleting=True)])) == Phase.PENDING


def test_an_unschedulable_replica_is_pending_with_the_schedulers_reason() -> None:
    m = model({"resources": {"gpu": {"count": 9}}})
    stuck = pod(m, init="waiting")
    stuck["status"] = {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                       "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]}
    status = compute(m, Observed(pvc=BOUND, pods=[stuck]), None)
    assert status.phase == Phase.PENDING
    assert status.conditions[0].reason == "Unschedulable"
    assert "Insufficient nvidia.com/gpu" in status.conditions[0].message


def test_failed_download_is_an_error_that_points_at_the_logs() -> None:
    m = model()
    status = compute(m, Observed(pvc=BOUND, pods=[pod(m, init="failed")]), None)
    assert status.phase == Phase.ERROR
    assert "kubectl logs" in status.conditions[0].message


def test_vllm_crashing_after_start_is_degraded() -> None:
    m = model()
    assert phase(m, Observed(pvc=BOUND, pods=[pod(m, restarts=2)])) == Phase.DEGRADED


def test_a_problem_outside_the_spec_is_an_error_with_its_message() -> None:
    m = model()
    status = compute(m, Observed(pvc=BOUND, problem=Problem("SecretMissing", "Secret hf-token not found")), None)
    assert status.phase == Phase.ERROR
    assert (status.conditions[0].reason, status.conditions[0].message) == ("SecretMissing", "Secret hf-token not found")


def test_scaled_to_zero_is_ready_but_not_available() -> None:
    m = model({"serving": {"replicas": 0}})
    observed = Observed(pvc=BOUND)
    assert phase(m, observed) == Phase.READY
    assert conditions(m, observed)["Available"] == ("False", "ScaledToZero")


def test_preload_false_does_not_claim_to_have_verified_weights() -> None:
    m = model({"model": {"preload": False}})
    assert conditions(m, Observed(pvc=BOUND, pods=[pod(m, init=None)]))["ModelReady"] == ("True", "NotManaged")


def test_emptydir_and_oci_storage_is_ready_without_a_pvc() -> None:
    m = model({"model": {"storage": {"type": "emptyDir"}}})
    assert conditions(m, Observed())["StorageReady"] == ("True", "EmptyDir")


def test_transition_times_move_only_when_a_condition_flips() -> None:
    m = model()
    first = settle(compute(m, Observed(pvc=BOUND, pods=[pod(m, init="running")]), None), None, "t1", 1)
    again = settle(compute(m, Observed(pvc=BOUND, pods=[pod(m, init="running")]), first), first, "t2", 1)
    assert again == first  # nothing changed: nothing to write
    ready = settle(compute(m, Observed(pvc=BOUND, pods=[pod(m, ready=True)]), again), again, "t3", 1)
    times = {c.type: c.last_transition_time for c in ready.conditions}
    assert times == {"Ready": "t3", "StorageReady": "t1", "ModelReady": "t3", "Available": "t3"}


def test_download_progress_is_mirrored_from_the_lease_and_the_size_kept_after() -> None:
    from llmpack.assess.progress import download_progress
    from llmpack.wellknown import PROGRESS_ANNOTATION

    def lease(progress: object) -> dict[str, Any]:
        return {"metadata": {"annotations": {PROGRESS_ANNOTATION: json.dumps(progress)}}}

    running = {"phase": "downloading", "bytes_done": 5 << 30, "bytes_total": 20 << 30, "percent": 25,
               "rate": "100.0Mi/s", "eta": "153s", "holder": "qwen-abc"}
    download, size = download_progress(lease(running))
    assert download is not None
    assert (download.percent, download.holder, download.eta) == (25, "qwen-abc", "153s")
    assert size == "20.0Gi"
    assert download_progress(lease({**running, "phase": "complete", "percent": 100})) == (None, "20.0Gi")
    assert download_progress(None) == (None, None)
    assert download_progress({"metadata": {"annotations": {PROGRESS_ANNOTATION: "{not json"}}}) == (None, None)
    m = model()
    status = compute(m, Observed(pvc=BOUND, pods=[pod(m, init="waiting")], download=download, model_size=size), None)
    assert status.phase == Phase.DOWNLOADING
    assert status.model_size == "20.0Gi"


def test_files_already_on_the_volume_being_verified_show_as_verifying_with_their_percent() -> None:
    from llmpack.assess.progress import download_progress
    from llmpack.wellknown import PROGRESS_ANNOTATION

    checking = {"phase": "verifying", "bytes_done": 12 << 30, "bytes_total": 40 << 30, "percent": 30,
                "rate": "1.2Gi/s", "eta": "23s", "holder": "qwen-dl-abc", "model_bytes": 60 << 30}
    download, size = download_progress({"metadata": {"annotations": {PROGRESS_ANNOTATION: json.dumps(checking)}}})
    assert download is not None
    assert download.phase == "verifying"
    assert (download.percent, download.bytes_total) == (30, 40 << 30)
    assert size == "60.0Gi"  # the model's size, not the bytes being checked
    m = model()
    for observed in (Observed(pvc=BOUND, job="running", pods=[job_pod(m, "Running")], download=download),
                     Observed(pvc=BOUND, pods=[pod(m, init="running")], download=download)):
        status = compute(m, observed, None)
        assert status.phase == Phase.DOWNLOADING
        ready = {c.type: c for c in status.conditions}
        assert (ready["Ready"].reason, ready["ModelReady"].reason) == ("Verifying", "Verifying")
        assert "verifying the files already on the volume" in ready["Ready"].message
        assert "30% (12.0Gi of 40.0Gi checked, 1.2Gi/s)" in ready["Ready"].message
        assert status.download is not None
        assert status.download.phase == "verifying"
    fetching = download.model_copy(update={"phase": "downloading"})
    status = compute(m, Observed(pvc=BOUND, job="running", pods=[job_pod(m, "Running")], download=fetching), None)
    assert status.conditions[0].reason == "Downloading"


def test_endpoints_are_reported_only_for_routes_in_place_and_a_missing_crd_does_not_stop_serving() -> None:
    m = model()
    routes = Routes((Report("InferencePoolReady", True, "Applied", "pool"),
                     Report("ExternalEndpointReady", False, "CRDMissing", "aigatewayroutes missing"),
                     Report("InternalEndpointReady", True, "Applied", "internal")),
                    endpoints={"internal": "https://llm-internal.example.org"})
    status = compute(m, Observed(pvc=BOUND, pods=[pod(m, ready=True)], routes=routes), None)
    assert status.phase == Phase.READY
    assert status.endpoints is not None
    assert status.endpoints.external is None
    assert status.endpoints.internal == "https://llm-internal.example.org"
    by_type = {c.type: (c.status.value, c.reason) for c in status.conditions}
    assert by_type["InferencePoolReady"] == ("True", "Applied")
    assert by_type["ExternalEndpointReady"] == ("False", "CRDMissing")
    assert by_type["InternalEndpointReady"] == ("True", "Applied")
    assert compute(m, Observed(pvc=BOUND, pods=[pod(m, ready=True)]), status).endpoints is None


def test_a_gateway_refusal_is_found_in_either_controllers_status_shape() -> None:
    envoy_gateway = {"status": {"ancestors": [{"ancestorRef": {"name": "llm-gateway"}, "controllerName": "eg",
                                               "conditions": [{"type": "Accepted", "status": "False",
                                                               "reason": "Invalid",
                                                               "message": "Secret t/x-api-keys does not exist"}]}]}}
    ai_gateway = {"status": {"conditions": [{"type": "NotAccepted", "status": "True", "reason": "Invalid",
                                             "message": "no such InferencePool"}]}}
    accepted = {"status": {"ancestors": [{"conditions": [{"type": "Accepted", "status": "True"}]}]}}
    assert refusal(envoy_gateway) == "Invalid: Secret t/x-api-keys does not exist"
    assert refusal(ai_gateway) == "Invalid: no such InferencePool"
    assert refusal(accepted) is None
    assert refusal({}) is None
    assert refusal(None) is None


def test_a_hostile_progress_annotation_is_ignored_not_raised() -> None:
    from llmpack.assess.progress import download_progress
    from llmpack.wellknown import PROGRESS_ANNOTATION

    for annotation in [
        '{"phase": "downloading", "bytes_total": Infinity, "bytes_done": 1}',
        '{"phase": "downloading", "bytes_total": 1, "bytes_done": 1, "percent": -Infinity}',
        '{"phase": "complete", "bytes_total": NaN}', '{"phase": "complete", "bytes_total": 1e999}',
        '{"phase": "complete", "bytes_total": "1e99999999"}',
        '{"phase": "complete", "bytes_total": ' + "9" * 5000 + "}",
    ]:
        assert download_progress({"metadata": {"annotations": {PROGRESS_ANNOTATION: annotation}}}) == (None, None)
    huge = json.dumps({"phase": "complete", "bytes_total": 10**400})  # readable, however absurd: no overflow
    assert download_progress({"metadata": {"annotations": {PROGRESS_ANNOTATION: huge}}})[1] is not None


def test_the_status_records_the_model_id_claimed_and_since_when_so_a_restart_decides_as_before() -> None:
    from llmpack.assess.claims import Claim

    m = model()
    claim = Claim("LLMModel", "models", "qwen", frozenset({"Qwen/Qwen3-8B"}), "2026-01-01T00:00:00Z")
    wire = compute(m, Observed(pvc=BOUND, claim=claim), None).wire()
    assert (wire["modelId"], wire["modelIdClaimedAt"]) == ("Qwen/Qwen3-8B", "2026-01-01T00:00:00Z")
    assert "modelId" not in compute(m, Observed(pvc=BOUND), None).wire()
def pvc(storage_class: str = "standard", **annotations: str) -> dict[str, Any]:
    return {"metadata": {"name": "qwen-model-storage", "annotations": annotations},
            "spec": {"storageClassName": storage_class}, "status": {"phase": "Pending"}}


def event(reason: str, message: str, when: str, component: str = "persistentvolume-controller") -> dict[str, Any]:
    return {"type": "Warning", "reason": reason, "message": message, "lastTimestamp": when,
            "source": {"component": component}}


def claims_a_download(status: Any) -> list[str]:
    return [f"{c.type}={c.reason}: {c.message}" for c in status.conditions
            if c.reason == "Downloading" or "fetching" in c.message or "being fetched" in c.message]


def test_a_missing_storage_class_is_named_and_no_condition_claims_a_download() -> None:
    m = model({"model": {"storage": {"storageClassName": "fast-ssd"}}})
    status = compute(m, Observed(pvc=pvc("fast-ssd"), job="running", unbound=Unbound(class_missing=True),
                                 pods=[job_pod(m, "Pending", node=None)]), None)
    assert status.phase == Phase.PENDING
    by_type = {c.type: c for c in status.conditions}
    storage = by_type["StorageReady"]
    assert (storage.status.value, storage.reason) == ("False", "StorageClassNotFound")
    assert "StorageClass fast-ssd does not exist" in storage.message
    assert "kubectl get storageclass" in storage.message
    assert "fast-ssd" in by_type["Ready"].message
    assert (by_type["ModelReady"].status.value, by_type["ModelReady"].reason) == ("False", "WaitingForStorage")
    assert "qwen-model-storage" in by_type["ModelReady"].message
    assert claims_a_download(status) == []


def test_a_class_that_binds_on_first_use_waits_for_the_download_pod_and_says_why_that_pod_cannot_run() -> None:
    m = model()
    wffc = Unbound(storage_class={"provisioner": "ebs.csi.aws.com", "volumeBindingMode": "WaitForFirstConsumer"})
    waiting = compute(m, Observed(pvc=pvc("gp3"), job="running", unbound=wffc), None)
    storage = {c.type: c for c in waiting.conditions}["StorageReady"]
    assert storage.reason == "WaitingForFirstConsumer"
    assert "binds once its first pod is scheduled" in storage.message
    why = "0/3 nodes are available: 3 node(s) didn't find available persistent volumes to bind."
    stuck = compute(m, Observed(pvc=pvc("gp3"), job="running", unbound=wffc,
                                pods=[job_pod(m, "Pending", node=None, unschedulable=why)]), None)
    by_type = {c.type: c for c in stuck.conditions}
    assert stuck.phase == Phase.PENDING
    assert by_type["StorageReady"].reason == "WaitingForFirstConsumer"
    assert f"the download Job's pod cannot be scheduled: {why}" in by_type["StorageReady"].message
    assert by_type["ModelReady"].reason == "WaitingForStorage"
    assert claims_a_download(stuck) == []
    # Once the scheduler picked a node for it, the class no longer waits for a pod: the provisioner does.
    picked = compute(m, Observed(pvc=pvc("gp3", **{"volume.kubernetes.io/selected-node": "n1"}), unbound=wffc), None)
    assert "from ebs.csi.aws.com" in {c.type: c for c in picked.conditions}["StorageReady"].message


def test_a_provisioning_failure_is_quoted_from_the_newest_warning_about_the_pvc() -> None:
    m = model()
    warnings = (event("ProvisioningFailed", "old failure", "2026-01-01T00:00:00Z", "ebs.csi.aws.com"),
                event("ProvisioningFailed", "rpc error: code = ResourceExhausted desc = volume quota exceeded",
                      "2026-01-01T00:05:00Z", "ebs.csi.aws.com"))
    status = compute(m, Observed(pvc=pvc("gp3"), unbound=Unbound(storage_class={"provisioner": "ebs.csi.aws.com"},
                                                                 warnings=warnings)), None)
    storage = {c.type: c for c in status.conditions}["StorageReady"]
    assert (storage.status.value, storage.reason) == ("False", "ProvisioningFailed")
    assert storage.message == ("PVC qwen-model-storage is not bound; ebs.csi.aws.com reports: rpc error: code = "
                               "ResourceExhausted desc = volume quota exceeded")
    assert status.phase == Phase.PENDING


def test_an_unbound_pvc_without_a_known_cause_names_the_provisioner_it_waits_for() -> None:
    m = model()
    named = pvc(**{"volume.kubernetes.io/storage-provisioner": "example.com/nfs"})
    storage = {c.type: c for c in compute(m, Observed(pvc=named, unbound=Unbound()), None).conditions}["StorageReady"]
    assert (storage.reason, storage.message.split(";")[0]) == (
        "Pending", "PVC qwen-model-storage waits for a volume from example.com/nfs (StorageClass standard)")


@pytest.mark.parametrize(("pod_", "warnings", "reason", "words"), [
    ({"node": None, "unschedulable": "0/3 nodes are available: 3 node(s) had volume node affinity conflict."}, (),
     "DownloadUnschedulable", "cannot be scheduled: 0/3 nodes are available: 3 node(s) had volume node affinity"),
    ({"waiting": "ImagePullBackOff"}, (), "DownloadCannotStart",
     "cannot start: ImagePullBackOff: ImagePullBackOff detail"),
    ({"waiting": "ContainerCreating"}, (event("FailedMount", "MountVolume.SetUp failed: timed out", "t", "kubelet"),),
     "DownloadCannotStart", "cannot start: FailedMount: MountVolume.SetUp failed: timed out (reported by kubelet)"),
])
def test_a_download_pod_that_cannot_run_is_pending_and_says_why_in_its_own_words(
        pod_: dict[str, Any], warnings: tuple[dict[str, Any], ...], reason: str, words: str) -> None:
    m = model()
    status = compute(m, Observed(pvc=BOUND, job="running", pods=[job_pod(m, "Pending", **pod_)],
                                 job_pod_warnings=warnings), None)
    by_type = {c.type: c for c in status.conditions}
    assert status.phase == Phase.PENDING
    assert (by_type["ModelReady"].status.value, by_type["ModelReady"].reason) == ("False", reason)
    assert words in by_type["ModelReady"].message
    assert by_type["Ready"].reason == reason
    assert words in by_type["Ready"].message
    assert by_type["StorageReady"].reason == "Bound"


def test_a_download_job_is_downloading_only_while_its_pod_runs() -> None:
    m = model()
    for pods, want in (([], "WaitingForDownload"), ([job_pod(m, "Pending", waiting="ContainerCreating")],
                                                   "WaitingForDownload"),
                       ([job_pod(m, "Running")], "Downloading")):
        status = compute(m, Observed(pvc=BOUND, job="running", pods=pods), None)
        assert {c.type: c.reason for c in status.conditions}["ModelReady"] == want
        assert status.phase == (Phase.DOWNLOADING if want == "Downloading" else Phase.PENDING)


def _written(phase: str, ready: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"phase": phase, "observedGeneration": 1, "modelId": "org/m", **extra,
            "conditions": [{"type": "Ready", "status": ready, "reason": phase, "message": message,
                            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]}


def test_a_status_that_changes_only_a_message_or_progress_may_wait_but_a_phase_or_claim_never_does() -> None:
    before = _written("Pending", "False", "the download Job's pod is starting on node n1")
    assert only_details_differ(_written("Pending", "False", "the download Job's pod is starting (ContainerCreating)"),
                               before)
    assert only_details_differ(_written("Pending", "False", before["conditions"][0]["message"],
                                        download={"percent": 40}), before)
    assert not only_details_differ(_written("Downloading", "False", "fetching"), before)
    assert not only_details_differ(_written("Pending", "True", before["conditions"][0]["message"]), before)
    moved = _written("Pending", "False", before["conditions"][0]["message"], modelId="org/other")
    assert not only_details_differ(moved, before)
    assert not only_details_differ({**before, "observedGeneration": 2}, before)
