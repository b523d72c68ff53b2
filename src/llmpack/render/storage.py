"""The seed's storage layout: where the weights live and what fills that place before vLLM starts.

build_storage(model, config) returns a StorageLayout: the PVC (if any), the init container that fills the
volume (if any), the pod volumes and the vLLM container's mounts. Every path of loading puts the weights at
/model-cache, the path vLLM is given with --model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmpack.api import LLMModel, StorageType, names
from llmpack.assess.sizing import HubFacts, pinned, pvc_size
from llmpack.config import Config
from llmpack.render import coordination, security
from llmpack.render.meta import metadata
from llmpack.wellknown import HF_TOKEN_KEY

VOLUME = "model-storage"
MODEL_PATH = "/model-cache"
OCI_SOURCE_DIR = "/models"
OCI_TARGET_DIR = "/shared-models"  # where the seed's copy step sees the shared volume
# How the weights reach /model-cache (status.loading).
IMAGE_VOLUME, COPY, DOWNLOAD_JOB, POD_DOWNLOAD, MANUAL = "ImageVolume", "Copy", "DownloadJob", "PodDownload", "Manual"
DOWNLOADER = "model-downloader"
LOADER = "model-loader"


@dataclass(frozen=True)
class StorageLayout:
    pvc: dict[str, Any] | None
    init_containers: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    vllm_mounts: list[dict[str, Any]] = field(default_factory=list)
    model_path: str = MODEL_PATH
    access_mode: str | None = None  # of the PVC, also while it waits for its size


def access_mode(model: LLMModel, config: Config) -> str:
    return (model.spec.model.storage.access_mode or config.access_mode).value


def pvc(model: LLMModel, config: Config, size: str) -> dict[str, Any]:
    storage = model.spec.model.storage
    spec: dict[str, Any] = {
        "accessModes": [access_mode(model, config)],
        "resources": {"requests": {"storage": size}},
    }
    storage_class = storage.storage_class_name or config.storage_class_name
    if storage_class:  # unset means the cluster's default StorageClass
        spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(model, names.storage_pvc(model.name), owned=not storage.retain_on_delete),
        "spec": spec,
    }


def downloader(model: LLMModel, config: Config, revision: str | None = None) -> dict[str, Any]:
    """`revision`: the commit the sizing step resolved, which every downloader of the model fetches."""
    m = model.spec.model
    args = [m.name, "--local-dir", MODEL_PATH]
    if revision or m.revision:
        args += ["--revision", revision or m.revision or ""]
    container: dict[str, Any] = {
        "name": DOWNLOADER,
        "image": config.downloader_image,
        "args": args,
        "volumeMounts": [{"name": VOLUME, "mountPath": MODEL_PATH}],
        "securityContext": security.container(security.NONROOT_UID),
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    }
    env: list[dict[str, Any]] = []
    if m.auth_secret_name:
        env.append({"name": HF_TOKEN_KEY,
                    "valueFrom": {"secretKeyRef": {"name": m.auth_secret_name, "key": HF_TOKEN_KEY}}})
    if coordination.needs_lease(model):
        lease_env, lease_mounts = coordination.downloader_additions(model)
        env += lease_env
        container["volumeMounts"] += lease_mounts
    if env:
        container["env"] = env
    return container


def loader(model: LLMModel) -> dict[str, Any]:
    assert model.spec.model.image is not None
    return {
        "name": LOADER,
        "image": model.spec.model.image,
        "command": ["cp", "-r", f"{OCI_SOURCE_DIR}/.", f"{OCI_TARGET_DIR}/"],
        "volumeMounts": [{"name": VOLUME, "mountPath": OCI_TARGET_DIR}],
        "securityContext": security.container(security.NONROOT_UID),
    }


def loading(model: LLMModel, image_volumes: bool) -> str:
    """How the weights reach /model-cache; `image_volumes`: the cluster mounts image volumes (Kubernetes 1.35+)."""
    m = model.spec.model
    if not m.preload:
        return MANUAL
    if m.is_oci:
        return IMAGE_VOLUME if (image_volumes if m.image_volume is None else m.image_volume) else COPY
    return DOWNLOAD_JOB if m.storage.type == StorageType.PVC else POD_DOWNLOAD


def _image_volume(model: LLMModel) -> StorageLayout:
    """The image's /models, read-only at /model-cache: no init container, no copy, no node disk of ours."""
    assert model.spec.model.image is not None
    volume = {"name": VOLUME, "image": {"reference": model.spec.model.image, "pullPolicy": "IfNotPresent"}}
    mount = {"name": VOLUME, "mountPath": MODEL_PATH, "subPath": OCI_SOURCE_DIR.strip("/"), "readOnly": True}
    return StorageLayout(None, [], [volume], [mount])


def _empty_dir(size: str | None) -> dict[str, Any]:
    return {"name": VOLUME, "emptyDir": {"sizeLimit": size} if size else {}}


def build_storage(model: LLMModel, config: Config, hub: HubFacts | None = None,
                  image_volumes: bool = True) -> StorageLayout:
    """`hub`: what the sizing step reported (None: offline, the size the spec gives and no pinned commit).
    `image_volumes`: the cluster mounts image volumes (Kubernetes 1.35+; offline, we assume it does)."""
    m = model.spec.model
    mounts = [{"name": VOLUME, "mountPath": MODEL_PATH}]
    if loading(model, image_volumes) == IMAGE_VOLUME:
        return _image_volume(model)
    if m.is_oci:
        # Weights baked into an image: copied into an emptyDir on every pod start (no PVC).
        size = m.storage.size if m.storage.type == StorageType.EMPTY_DIR else None
        init = [loader(model)] if m.preload else []
        return StorageLayout(None, init, [_empty_dir(size)], mounts)
    if m.storage.type == StorageType.EMPTY_DIR:
        init = [downloader(model, config)] if m.preload else []
        return StorageLayout(None, init, [_empty_dir(m.storage.size)], mounts)
    facts = hub or HubFacts()
    init = [downloader(model, config, pinned(facts))] if m.preload else []
    size = pvc_size(model, facts)  # unknown until the Hub has said what the weights take: no PVC yet
    volumes = [{"name": VOLUME, "persistentVolumeClaim": {"claimName": names.storage_pvc(model.name)}}]
    if coordination.needs_lease(model):
        volumes.append(coordination.token_volume())
    return StorageLayout(pvc(model, config, size) if size else None, init, volumes, mounts,
                         access_mode=access_mode(model, config))
