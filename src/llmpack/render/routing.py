"""What routes requests to a model's vLLM pods by load: a Gateway API Inference Extension InferencePool and
its endpoint picker (EPP, the llm-d inference scheduler). Applied once a replica is Ready (render/plan.py).

Names and fields are the LLM Serving Pack's: InferencePool `<m>`, EPP `<m>-epp` (ServiceAccount, Role,
RoleBinding, Service, Deployment) and ConfigMap `<m>-epp-config`. The pool selects the vLLM pods by
instance and `app.kubernetes.io/name: llmmodel`, which keeps the EPP's own pod out.
"""

from __future__ import annotations

from typing import Any

import yaml

from llmpack.api import LLMModel, names
from llmpack.config import Config
from llmpack.kinds import INFERENCE_POOL, INFERENCE_X_GROUP
from llmpack.render import security
from llmpack.render.meta import labels, metadata, selector_labels
from llmpack.render.serving import PORT

GRPC_PORT, HEALTH_PORT, METRICS_PORT = 9002, 9003, 9090
CONFIG_KEY = "epp-config.yaml"
CONFIG_DIR = "/etc/epp"
DEFAULT_SCHEDULER = yaml.safe_dump({
    "apiVersion": f"{INFERENCE_X_GROUP}/v1alpha1",
    "kind": "EndpointPickerConfig",
    "plugins": [{"type": "single-profile-handler"}, {"type": "max-score-picker"}],
    "schedulingProfiles": [{"name": "default", "plugins": [{"pluginRef": "max-score-picker"}]}],
}, sort_keys=False)


def _epp_labels(model: LLMModel) -> dict[str, str]:
    return {**labels(model), "app.kubernetes.io/name": "epp"}


def _epp_selector(model: LLMModel) -> dict[str, str]:
    return {"app.kubernetes.io/instance": model.name, "app.kubernetes.io/name": "epp"}


def _epp_metadata(model: LLMModel, name: str) -> dict[str, Any]:
    return {**metadata(model, name), "labels": _epp_labels(model)}


def inference_pool(model: LLMModel) -> dict[str, Any]:
    return {
        "apiVersion": INFERENCE_POOL.api_version,
        "kind": INFERENCE_POOL.kind,
        "metadata": metadata(model, names.inference_pool(model.name)),
        "spec": {
            "targetPorts": [{"number": PORT}],
            "selector": {"matchLabels": selector_labels(model)},
            "endpointPickerRef": {"name": names.epp(model.name), "kind": "Service", "port": {"number": GRPC_PORT}},
        },
    }


def epp_role(model: LLMModel) -> dict[str, Any]:
    read = ["get", "list", "watch"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _epp_metadata(model, names.epp(model.name)),
        "rules": [
            {"apiGroups": [INFERENCE_POOL.group, INFERENCE_X_GROUP], "resources": [INFERENCE_POOL.plural],
             "verbs": read},
            {"apiGroups": [INFERENCE_X_GROUP],
             "resources": ["inferenceobjectives", "inferencemodelrewrites", "inferencepoolimports"], "verbs": read},
            {"apiGroups": [""], "resources": ["pods", "endpoints", "services"], "verbs": read},
        ],
    }


def epp_objects(model: LLMModel, config: Config) -> list[dict[str, Any]]:
    name, config_name = names.epp(model.name), names.epp_config(model.name)
    chosen = model.spec.advanced.inference_pool.scheduler_config or DEFAULT_SCHEDULER  # text as written, or YAML
    scheduler = chosen if isinstance(chosen, str) else yaml.safe_dump(chosen, sort_keys=False)
    grpc_probe = {"grpc": {"port": HEALTH_PORT, "service": "inference-extension"}, "periodSeconds": 10}
    container = {
        "name": "epp",
        "image": config.epp_image,
        "args": ["--pool-name", model.name, "--pool-namespace", model.namespace or "default",
                 "--grpc-port", str(GRPC_PORT), "--grpc-health-port", str(HEALTH_PORT),
                 "--metrics-port", str(METRICS_PORT), "--config-file", f"{CONFIG_DIR}/{CONFIG_KEY}"],
        "ports": [{"name": "grpc", "containerPort": GRPC_PORT}, {"name": "grpc-health", "containerPort": HEALTH_PORT},
                  {"name": "metrics", "containerPort": METRICS_PORT}],
        "readinessProbe": grpc_probe,
        "livenessProbe": {**grpc_probe, "failureThreshold": 3},
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
        "securityContext": security.container(security.NONROOT_UID),
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _epp_metadata(model, name)},
        epp_role(model),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": _epp_metadata(model, name),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name,
                       **({"namespace": model.namespace} if model.namespace else {})}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _epp_metadata(model, config_name),
         "data": {CONFIG_KEY: scheduler}},
        {"apiVersion": "v1", "kind": "Service", "metadata": _epp_metadata(model, name),
         "spec": {"selector": _epp_selector(model),
                  "ports": [{"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "appProtocol": "http2"},
                            {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics"}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _epp_metadata(model, name),
         "spec": {"replicas": 1, "selector": {"matchLabels": _epp_selector(model)},
                  "template": {"metadata": {"labels": _epp_labels(model)},
                               "spec": {"serviceAccountName": name, "containers": [container],
                                        "volumes": [{"name": "config",
                                                     "configMap": {"name": config_name}}]}}}},
    ]


def routing(model: LLMModel, config: Config) -> list[dict[str, Any]]:
    """The pool and its picker (dependencies first: the picker's Service before the pool that names it)."""
    return [*epp_objects(model, config), inference_pool(model)]
