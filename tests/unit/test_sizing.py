"""Sizing from the Hub: the PVC a model without a size gets, the refusal of one too small before any byte, and the
commit every downloader of the model is pinned to. Pure: Lease bodies and facts in, objects and status out."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from llmpack.api import Phase
from llmpack.assess.hub import sizing_state
from llmpack.assess.sizing import GIB, HubFacts, HubSize, downloaded_commit, hub_facts, hub_size, pvc_size_for
from llmpack.assess.status import Observed, compute
from llmpack.config import Config
from llmpack.quantity import parse_quantity
from llmpack.render import render
from llmpack.render.sizing import job_name
from llmpack.wellknown import PROGRESS_ANNOTATION, SIZE_ANNOTATION
from tests.unit.factories import model
from tests.unit.render_helpers import find, job_of

CONFIG = Config()
COMMIT = "c" * 40
SIZELESS = {"model": {"storage": {"size": None}}}


def lease(**annotations: dict[str, Any]) -> dict[str, Any]:
    keys = {"size": SIZE_ANNOTATION, "progress": PROGRESS_ANNOTATION}
    return {"metadata": {"annotations": {keys[k]: json.dumps(v) for k, v in annotations.items()}}}


def args_of(job: dict[str, Any] | None) -> list[str]:
    assert job is not None
    return list(job["spec"]["template"]["spec"]["containers"][0]["args"])


def test_the_margin_is_fifteen_percent_rounded_up_to_whole_gi() -> None:
    assert pvc_size_for(int(Decimal("67.2") * GIB)) == "78Gi"  # the issue's example
    assert pvc_size_for(1) == "1Gi"
    assert pvc_size_for(0) == "1Gi"


@given(st.integers(0, 1 << 50))
def test_the_pvc_from_the_hub_holds_the_model_and_its_margin_and_no_more_than_a_gi_beyond(size: int) -> None:
    asked = parse_quantity(pvc_size_for(size))
    assert asked >= size * Decimal("1.15")
    assert asked < max(size * Decimal("1.15"), 0) + GIB or asked == GIB


def test_a_model_without_a_size_has_no_pvc_and_no_download_until_the_hub_answers() -> None:
    m = model(SIZELESS)
    objects = render(m, CONFIG, hub=HubFacts())
    assert find(objects, "PersistentVolumeClaim") is None
    assert job_of(objects, "model-download") is None
    assert args_of(job_of(objects, "model-size")) == ["Qwen/Qwen3-8B", "--size-only"]
    deployment = find(objects, "Deployment")
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 0


def test_once_sized_the_pvc_has_the_hubs_figure_and_every_downloader_fetches_the_resolved_commit() -> None:
    m = model(SIZELESS)
    objects = render(m, CONFIG, hub=HubFacts(bytes=20 * GIB, commit=COMMIT))
    pvc = find(objects, "PersistentVolumeClaim")
    assert pvc is not None
    assert pvc["spec"]["resources"]["requests"]["storage"] == "23Gi"
    assert args_of(job_of(objects, "model-download"))[-2:] == ["--revision", COMMIT]
    deployment = find(objects, "Deployment")
    assert deployment is not None
    init = deployment["spec"]["template"]["spec"]["initContainers"][0]
    assert init["args"][-2:] == ["--revision", COMMIT]


def test_the_sizing_job_carries_the_token_and_the_lease_but_no_volume_and_no_gpu() -> None:
    m = model({"model": {"authSecretName": "hf-token", "revision": "v2"}, "resources": {"gpu": {"count": 2}}})
    job = job_of(render(m, CONFIG, hub=HubFacts()), "model-size")
    assert job is not None
    pod = job["spec"]["template"]["spec"]
    (sizer,) = pod["containers"]
    assert sizer["args"] == ["Qwen/Qwen3-8B", "--size-only", "--revision", "v2"]
    env = {e["name"]: e for e in sizer["env"]}
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "HF_TOKEN"}
    assert env["LLMPACK_LEASE_NAME"]["value"] == "qwen-model-download"
    assert all("persistentVolumeClaim" not in v for v in pod["volumes"])
    assert "nvidia.com/gpu" not in str(pod)


def test_a_pvc_too_small_for_the_hubs_figure_is_an_error_with_both_figures_and_no_download() -> None:
    m = model({"model": {"storage": {"size": "30Gi"}}})
    hub = HubFacts(bytes=int(Decimal("67.2") * GIB), commit=COMMIT)
    assert job_of(render(m, CONFIG, hub=hub), "model-download") is None
    state = sizing_state(m, hub, HubSize(commit=COMMIT, bytes=hub.bytes), "succeeded")
    assert state.problem is not None
    assert state.problem.reason == "StorageTooSmall"
    assert "needs 67.2Gi" in state.problem.message
    assert "the PVC is 30Gi" in state.problem.message
    assert "at least 78Gi" in state.problem.message
    status = compute(m, Observed(problem=state.problem), None)
    assert status.phase == Phase.ERROR
    grown = model({"model": {"storage": {"size": "80Gi"}}})
    assert sizing_state(grown, hub, HubSize(commit=COMMIT, bytes=hub.bytes), "succeeded").problem is None
    assert job_of(render(grown, CONFIG, hub=hub), "model-download") is not None


@given(size=st.integers(1, 1 << 45), gi=st.integers(1, 1 << 15))
def test_the_download_is_rendered_exactly_when_the_given_pvc_holds_the_hubs_figure(size: int, gi: int) -> None:
    m = model({"model": {"storage": {"size": f"{gi}Gi"}}})
    job = job_of(render(m, CONFIG, hub=HubFacts(bytes=size, commit=COMMIT)), "model-download")
    assert (job is not None) == (size <= gi * GIB)


@given(size=st.integers(0, 1 << 45), existing=st.integers(1, 1 << 15))
def test_a_size_from_the_hub_never_shrinks_an_existing_pvc(size: int, existing: int) -> None:
    m = model(SIZELESS)
    pvc = find(render(m, CONFIG, hub=HubFacts(bytes=size, commit=COMMIT, pvc_size=f"{existing}Gi")),
               "PersistentVolumeClaim")
    assert pvc is not None
    asked = parse_quantity(pvc["spec"]["resources"]["requests"]["storage"])
    assert asked >= existing * GIB
    assert asked >= size


def test_an_unreachable_hub_waits_saying_what_to_set_and_a_given_size_goes_ahead() -> None:
    report = HubSize(error="cannot reach the Hub", retrying=True)
    sizeless = model(SIZELESS)
    hub = hub_facts(sizeless, report, "running", True, None, None)
    state = sizing_state(sizeless, hub, report, "running")
    assert state.problem is None
    assert state.waiting is not None
    assert state.waiting.reason == "HubUnreachable"
    assert "spec.model.storage.size" in state.waiting.message
    status = compute(sizeless, Observed(sizing=state.waiting), None)
    assert status.phase == Phase.PENDING
    assert {c.type: c.reason for c in status.conditions}["ModelReady"] == "HubUnreachable"
    sized = model({"model": {"storage": {"size": "30Gi"}}})
    hub = hub_facts(sized, report, "running", True, None, None)
    assert sizing_state(sized, hub, report, "running") == sizing_state(sized, HubFacts(sizes=False), None, None)
    assert job_of(render(sized, CONFIG, hub=hub), "model-download") is not None


def test_a_report_for_another_revision_or_repo_is_not_this_models() -> None:
    m = model({"model": {"revision": "v2"}})
    mine = {"repo": "Qwen/Qwen3-8B", "revision": "v2", "commit": COMMIT, "bytes": 5}
    assert hub_size(lease(size=mine), m) == HubSize(commit=COMMIT, bytes=5)
    assert hub_size(lease(size={**mine, "revision": "main"}), m) is None
    assert hub_size(lease(size={**mine, "repo": "other/model"}), m) is None
    assert hub_size({"metadata": {"annotations": {SIZE_ANNOTATION: "{not json"}}}, m) is None


def test_a_download_begun_before_sizing_is_left_alone_and_its_commit_still_shown() -> None:
    m = model()
    legacy_job = {"spec": {"template": {"spec": {"containers": [{"args": ["Qwen/Qwen3-8B", "--local-dir", "/m"]}]}}}}
    hub = hub_facts(m, None, None, False, legacy_job, None)
    assert hub == HubFacts(sizes=False)
    objects = render(m, CONFIG, hub=hub, weights_ready=True)
    assert job_of(objects, "model-size") is None
    assert args_of(job_of(objects, "model-download")) == ["Qwen/Qwen3-8B", "--local-dir", "/model-cache"]
    progress = {"phase": "complete", "commit": COMMIT, "repo": "Qwen/Qwen3-8B", "revision": "main"}
    assert downloaded_commit(lease(progress=progress), m) == COMMIT


def test_the_resolved_commit_reaches_status_and_stays() -> None:
    m = model()
    first = compute(m, Observed(resolved_revision=COMMIT), None)
    assert first.resolved_revision == COMMIT
    assert compute(m, Observed(), first).resolved_revision == COMMIT
    assert job_name(m).startswith("qwen-size-")
