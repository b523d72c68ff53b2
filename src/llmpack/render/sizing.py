"""The sizing step: a Job without GPUs or volume that asks the Hub what the weights take (`llmpack download
--size-only`) and writes it onto the download Lease, before the PVC is sized or a byte is fetched.

It runs in a pod, with the token of a gated model, so the operator never reads the token. What it reported is
passed back in as `HubFacts` (render has no I/O): the PVC is sized from it when spec.model.storage.size is
unset, the download waits for it and is not rendered while the PVC is too small, and the download and every
replica are pinned to the commit it resolved.
"""

from __future__ import annotations

from typing import Any

from llmpack.api import LLMModel, names
from llmpack.assess.sizing import HubFacts, too_small
from llmpack.config import Config
from llmpack.render import download_job, security
from llmpack.render.meta import identity, labels, metadata

SIZE_COMPONENT = "model-size"


def needs_sizing(model: LLMModel, hub: HubFacts) -> bool:
    return download_job.needs_job(model) and hub.sizes


def job_name(model: LLMModel) -> str:
    return names.size_job(model.name, identity(model))


def too_small_problem(model: LLMModel, hub: HubFacts) -> str | None:
    """The message when the PVC the spec asks for cannot hold what the Hub says the weights take."""
    size = model.spec.model.storage.size
    if not needs_sizing(model, hub) or hub.bytes is None or size is None:
        return None
    return too_small(hub.bytes, size)


def download_may_start(model: LLMModel, hub: HubFacts) -> bool:
    """Only once the Hub's figure says the PVC fits; or, with the Hub out of reach, when the user gave a size
    (the condition advises setting one: the download then goes ahead and copes with the Hub itself)."""
    if not needs_sizing(model, hub):
        return True
    if hub.bytes is not None:
        return too_small_problem(model, hub) is None
    return hub.unreachable and model.spec.model.storage.size is not None


def job(model: LLMModel, config: Config, container: dict[str, Any], volumes: list[dict[str, Any]]) -> dict[str, Any]:
    """`container`: the downloader as the download Job runs it (token, Lease access); here it fetches nothing."""
    m = model.spec.model
    sizer = {**container, "name": SIZE_COMPONENT,
             "args": [m.name, "--size-only", *(["--revision", m.revision] if m.revision else [])],
             "volumeMounts": [v for v in container["volumeMounts"] if v["name"] != "model-storage"],
             "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(model, job_name(model)),
        "spec": {
            "backoffLimit": 3,  # a Hub out of reach is retried inside the pod; this is for a pod that died
            "template": {
                "metadata": {"labels": {**labels(model), "app.kubernetes.io/name": SIZE_COMPONENT}},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "serviceAccountName": names.service_account(model.name),
                    "securityContext": security.pod(config.fs_group),
                    "containers": [sizer],
                    "volumes": [v for v in volumes if "persistentVolumeClaim" not in v],  # the API token only
                },
            },
        },
    }
