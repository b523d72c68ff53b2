"""How `make demo` plays a Job's pod on this machine (llmpack_dev/played.py): the operator's own download Job,
its args and env resolved as the kubelet would, its volume a directory, its exit the pod's phase."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmpack.assess.sizing import HubFacts
from llmpack.config import load_config
from llmpack.render import render
from llmpack.render.download_job import DOWNLOAD_COMPONENT
from llmpack.render.sizing import SIZE_COMPONENT
from llmpack_dev.demo_hub import Weights
from llmpack_dev.played import container_env, error_line, exited, local_args
from tests.unit.factories import model

COMMIT = "c" * 40


def job_pod(component: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """The pod of the operator's Job `component` for a model the sizing step has sized, as the API server
    holds it (the Job's template, a name and a namespace)."""
    objects = render(model(spec, name="qwen-int4", namespace="demo"), load_config(env={}), weights_ready=False,
                     hub=HubFacts(bytes=1 << 30, commit=COMMIT))
    (job,) = [o for o in objects if o["kind"] == "Job"
              and o["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == component]
    return {"metadata": {"name": f"{job['metadata']['name']}-x7k2p", "namespace": "demo"},
            "spec": job["spec"]["template"]["spec"]}


def test_the_download_jobs_volume_becomes_a_directory_and_its_other_args_stay_as_rendered(tmp_path: Path) -> None:
    args = local_args(job_pod(DOWNLOAD_COMPONENT), tmp_path)
    assert args == ["Qwen/Qwen3-8B", "--local-dir", str(tmp_path / "qwen-int4-model-storage"), "--revision", COMMIT]


def test_the_sizing_jobs_args_are_run_as_they_are() -> None:
    assert local_args(job_pod(SIZE_COMPONENT), Path("/nowhere")) == ["Qwen/Qwen3-8B", "--size-only"]


def test_the_download_jobs_env_names_its_lease_and_its_own_pod_as_the_kubelet_resolves_them() -> None:
    pod = job_pod(DOWNLOAD_COMPONENT, {"model": {"authSecretName": "hf-token"}})
    asked: list[tuple[str, str]] = []

    def secret(name: str, key: str) -> str:
        asked.append((name, key))
        return "hf_secret"

    env = container_env(pod, secret)
    assert env == {"HF_TOKEN": "hf_secret", "LLMPACK_LEASE_NAME": "qwen-int4-model-download",
                   "POD_NAME": pod["metadata"]["name"], "POD_NAMESPACE": "demo"}
    assert asked == [("hf-token", "HF_TOKEN")]
    assert "HF_TOKEN" not in container_env(pod, lambda name, key: None)  # a key that is not there: left out


def test_an_exit_becomes_the_pods_phase_with_the_downloaders_error_line_as_its_message(tmp_path: Path) -> None:
    log = tmp_path / "played.log"
    log.write_text('{"phase": "planned", "files": 4}\n'
                   "llmpack download: org/missing was not found (or is private and needs a token): check "
                   "spec.model.name\n")
    line = error_line(log)
    assert line.startswith("llmpack download: org/missing was not found")
    failed = exited(4, line, [("model-download", "img")], "t0", "t1")
    assert failed["phase"] == "Failed"
    (state,) = [c["state"]["terminated"] for c in failed["containerStatuses"]]
    assert (state["exitCode"], state["reason"], state["message"]) == (4, "Error", line)
    done = exited(0, "", [("model-download", "img")], "t0", "t1")
    assert done["phase"] == "Succeeded"
    assert done["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert error_line(tmp_path / "never-written.log") == ""


def test_the_demo_hub_paces_each_connection_so_the_download_takes_the_seconds_asked() -> None:
    # 256 MiB in 16 parts of 16 MiB over the downloader's 16 connections: one part each, all at once.
    weights = Weights()
    assert weights.total() == 256 << 20
    assert weights.pace() == (16 << 20) / 25
    # 600 MiB: 38 parts, so each connection carries three one after another.
    assert Weights(600 << 20, 30).pace() == 3 * (16 << 20) / 30
    assert Weights(64 << 20, 0).pace() is None  # unpaced
