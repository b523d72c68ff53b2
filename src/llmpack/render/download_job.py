"""The download, run as a Job without GPUs before any vLLM replica starts (the seed downloads in an init
container of every replica, so each replica holds its GPUs for the whole download).

The Deployment stays at 0 replicas until the Job for the current weights has succeeded; its init
container remains as a safety net that finds the directory complete in well under a second.
"""

from __future__ import annotations

from typing import Any

from llmpack.api import LLMModel, StorageType, names
from llmpack.config import Config
from llmpack.render import security
from llmpack.render.meta import identity, labels, metadata
from llmpack.render.storage import StorageLayout, downloader

DOWNLOAD_COMPONENT = "model-download"


def needs_job(model: LLMModel) -> bool:
    """Only a PVC outlives the Job's pod; an emptyDir is each vLLM pod's own and must be filled there."""
    m = model.spec.model
    return m.preload and not m.is_oci and m.storage.type == StorageType.PVC


def job_name(model: LLMModel) -> str:
    return names.download_job(model.name, identity(model))


def _pod_labels(model: LLMModel) -> dict[str, str]:
    # Not the vLLM pods' selector labels: the Service and the Deployment must never pick this pod.
    return {**labels(model), "app.kubernetes.io/name": DOWNLOAD_COMPONENT}


def job(model: LLMModel, config: Config, layout: StorageLayout, revision: str | None = None) -> dict[str, Any]:
    """`revision`: the commit the sizing step resolved (the download fetches exactly that)."""
    container = downloader(model, config, revision)
    container["name"] = DOWNLOAD_COMPONENT
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(model, job_name(model)),
        "spec": {
            "backoffLimit": 6,  # a dropped Hub connection restarts the pod; partial files are resumed
            "template": {
                "metadata": {"labels": _pod_labels(model)},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "serviceAccountName": names.service_account(model.name),
                    "securityContext": security.pod(config.fs_group),
                    "containers": [container],
                    "volumes": list(layout.volumes),  # the PVC, and the API token for the Lease
                },
            },
        },
    }
