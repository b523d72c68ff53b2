"""The vLLM side of an LLMModel: ServiceAccount, Service and Deployment."""

from __future__ import annotations

from typing import Any

from llmpack.api import AccessMode, LLMModel, UpdateStrategy, names
from llmpack.config import Config
from llmpack.render import security
from llmpack.render.meta import identity, labels, metadata, selector_labels
from llmpack.render.storage import StorageLayout
from llmpack.wellknown import IDENTITY_ANNOTATION

PORT = 8000
VLLM = "vllm"
VLLM_UID = 1000
# The OpenAI server, named explicitly as the pack does: some vLLM images (llm-d-cuda, the pack's default)
# have an entrypoint that is a wrapper with no default command, so vLLM's flags alone would not start it.
VLLM_COMMAND = ("python3", "-m", "vllm.entrypoints.openai.api_server")
# Loading 80 GB of weights and compiling kernels can take long; the startup probe allows an hour.
STARTUP_PROBE_SECONDS = 3600
PROBE_PERIOD = 10


def service_account(model: LLMModel) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(model, names.service_account(model.name)),
        "automountServiceAccountToken": False,  # vLLM has no business with the API server
    }


def service(model: LLMModel) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(model, names.service(model.name)),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(model),
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def vllm_args(model: LLMModel, layout: StorageLayout) -> list[str]:
    spec = model.spec
    return [
        "--model", layout.model_path,
        "--served-model-name", spec.model.name,
        "--tensor-parallel-size", str(spec.tensor_parallel_size),
        "--data-parallel-size", str(spec.serving.data_parallelism),
        *spec.serving.vllm_args,
        *spec.advanced.vllm.extra_args,
    ]


def _env(model: LLMModel) -> list[dict[str, Any]]:
    ours: list[dict[str, Any]] = [{"name": "HOME", "value": "/tmp"}]  # vLLM caches under $HOME; / is not ours
    if model.spec.model.preload:
        ours.append({"name": "HF_HUB_OFFLINE", "value": "1"})  # the weights are local; never call the Hub
    theirs = model.spec.advanced.vllm.extra_env
    overridden = {e.get("name") for e in theirs}
    return [e for e in ours if e["name"] not in overridden] + list(theirs)


def _resources(model: LLMModel) -> dict[str, Any]:
    r = model.spec.resources
    requests: dict[str, Any] = dict(r.requests)
    limits: dict[str, Any] = dict(r.limits)
    if r.gpu.count > 0:
        gpu = r.gpu.vendor.resource
        requests[gpu] = limits[gpu] = str(r.gpu.count)
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 5,
    }


def vllm_container(model: LLMModel, config: Config, layout: StorageLayout) -> dict[str, Any]:
    serving = model.spec.serving
    container: dict[str, Any] = {
        "name": VLLM,
        "image": serving.image or config.serving_image,
        "args": vllm_args(model, layout),
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": _env(model),
        "volumeMounts": [*layout.vllm_mounts, {"name": "dshm", "mountPath": "/dev/shm"}],
        "startupProbe": _probe("/v1/models", PROBE_PERIOD, STARTUP_PROBE_SECONDS // PROBE_PERIOD),
        "readinessProbe": _probe("/v1/models", PROBE_PERIOD, 3),
        "livenessProbe": _probe("/health", 30, 3),
        "securityContext": security.container(VLLM_UID),
    }
    container["command"] = list(serving.command or VLLM_COMMAND)
    if resources := _resources(model):
        container["resources"] = resources
    return container


def _shm_volume(model: LLMModel) -> dict[str, Any]:
    # NCCL and vLLM's workers exchange tensors through /dev/shm; cap it by the memory limit when one is set.
    memory = model.spec.resources.limits.get("memory")
    return {"name": "dshm", "emptyDir": {"medium": "Memory", **({"sizeLimit": memory} if memory else {})}}


def _colocate(model: LLMModel) -> dict[str, Any]:
    """Replicas sharing a ReadWriteOnce PVC can only run on the node it is attached to: say so to the
    scheduler, so extra replicas wait visibly as Pending instead of failing to mount (Multi-Attach)."""
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": selector_labels(model)}, "topologyKey": "kubernetes.io/hostname"}]}}


def _tolerated(tolerations: list[dict[str, Any]], key: str) -> bool:
    """Whether a NoSchedule taint with this key (any value) is tolerated already."""
    return any(t.get("effect") in (None, "", "NoSchedule") and t.get("operator") == "Exists"
               and t.get("key") in (None, "", key) for t in tolerations)


def _scheduling(model: LLMModel, layout: StorageLayout) -> dict[str, Any]:
    spec = model.spec
    advanced = spec.advanced.vllm
    node_selector = dict(advanced.node_selector)
    tolerations = list(advanced.tolerations)
    gpu = spec.resources.gpu
    if gpu.count > 0:
        if gpu.product:
            node_selector.setdefault(gpu.vendor.product_label, gpu.product)  # the user's own selector wins
        # GPU pools are tainted with the vendor's resource name; tolerate it unless the user already does.
        if not _tolerated(tolerations, gpu.vendor.resource):
            tolerations.append({"key": gpu.vendor.resource, "operator": "Exists", "effect": "NoSchedule"})
    out: dict[str, Any] = {}
    if node_selector:
        out["nodeSelector"] = node_selector
    if tolerations:
        out["tolerations"] = tolerations
    if advanced.affinity:
        out["affinity"] = advanced.affinity  # the user's placement wins over ours
    elif layout.access_mode == AccessMode.READ_WRITE_ONCE.value:
        out["affinity"] = _colocate(model)
    return out


def _pod_annotations(model: LLMModel) -> dict[str, str]:
    annotations = {IDENTITY_ANNOTATION: identity(model)}
    if model.spec.serving.monitoring.enabled:
        annotations |= {"prometheus.io/scrape": "true", "prometheus.io/port": str(PORT),
                        "prometheus.io/path": "/metrics"}
    return annotations


def deployment(model: LLMModel, config: Config, layout: StorageLayout, *, hold: bool = False) -> dict[str, Any]:
    """`hold` keeps the Deployment at 0 replicas: no pod (and no GPU) while the model cannot progress."""
    serving = model.spec.serving
    strategy: dict[str, Any] = {"type": serving.update_strategy.value}
    if serving.update_strategy == UpdateStrategy.ROLLING_UPDATE:
        # A surge pod would need GPUs nobody has spare; replace one replica at a time instead.
        strategy["rollingUpdate"] = {"maxSurge": 0, "maxUnavailable": 1}
    pod_spec: dict[str, Any] = {
        "serviceAccountName": names.service_account(model.name),
        "securityContext": security.pod(config.fs_group),
        "containers": [vllm_container(model, config, layout)],
        "volumes": [*layout.volumes, _shm_volume(model)],
        **_scheduling(model, layout),
    }
    if layout.init_containers:
        pod_spec["initContainers"] = layout.init_containers
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(model, names.deployment(model.name)),
        "spec": {
            "replicas": 0 if hold else serving.replicas,
            "selector": {"matchLabels": selector_labels(model)},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": labels(model), "annotations": _pod_annotations(model)},
                "spec": pod_spec,
            },
        },
    }
