"""Every kind llmpack applies or watches, by group, version, kind and plural. The third-party ones also
name the project that installs their CRD: their objects are applied only once that CRD is established.
A kind written in several versions lists them newest first; the operator writes the newest one the
cluster serves (`newest_served`), so a gateway that deprecated an old version never hears from us in it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    installed_by: str | None = None  # third-party: what installs the CRD
    versions: tuple[str, ...] = ()  # every version we write, newest first; () = `version` only

    @property
    def api_version(self) -> str:
        return self.api_version_at(self.version)

    def api_version_at(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    @property
    def crd(self) -> str:
        return f"{self.plural}.{self.group}"


GATEWAY_API_GROUP = "gateway.networking.k8s.io"
INFERENCE_X_GROUP = "inference.networking.x-k8s.io"  # the endpoint picker's experimental kinds and config

INFERENCE_POOL = Kind("inference.networking.k8s.io", "v1", "InferencePool", "inferencepools",
                      "the Gateway API Inference Extension CRDs (v1.x)")
# v1alpha1 is all v0.5 (what the Serving Pack installs) serves; v1.1 serves both, deprecates v1alpha1, stores
# v1beta1. Our fields are the same in both.
AI_GATEWAY_ROUTE = Kind("aigateway.envoyproxy.io", "v1alpha1", "AIGatewayRoute", "aigatewayroutes",
                        "Envoy AI Gateway (v0.5 or later)", versions=("v1beta1", "v1alpha1"))
SECURITY_POLICY = Kind("gateway.envoyproxy.io", "v1alpha1", "SecurityPolicy", "securitypolicies",
                       "Envoy Gateway (v1.6 or later)")
POD_MONITOR = Kind("monitoring.coreos.com", "v1", "PodMonitor", "podmonitors",
                   "the Prometheus Operator (e.g. kube-prometheus-stack)")
GATEWAY = Kind(GATEWAY_API_GROUP, "v1", "Gateway", "gateways")
THIRD_PARTY = (INFERENCE_POOL, SECURITY_POLICY, AI_GATEWAY_ROUTE, POD_MONITOR)

# Every child whose changes wake its model (watched by label; the third-party ones once their CRDs exist).
CHILDREN = (
    Kind("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    Kind("", "v1", "Service", "services"),
    Kind("", "v1", "ServiceAccount", "serviceaccounts"),
    Kind("", "v1", "Pod", "pods"),
    Kind("apps", "v1", "Deployment", "deployments"),
    Kind("batch", "v1", "Job", "jobs"),
    Kind("coordination.k8s.io", "v1", "Lease", "leases"),
    Kind("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    Kind("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    Kind("", "v1", "ConfigMap", "configmaps"),
    Kind("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies"),
    INFERENCE_POOL, AI_GATEWAY_ROUTE, SECURITY_POLICY, POD_MONITOR,
)


def installs(crd: str) -> str:
    """What installs a third-party CRD, for messages that ask the user to install it."""
    return next(k.installed_by for k in THIRD_PARTY if k.crd == crd and k.installed_by)


def newest_served(kind: Kind, served: Collection[str]) -> str:
    """The newest version of `kind` that we write and the cluster serves; `kind.version` when it serves none
    of them or we do not know what it serves (then applying says what is wrong)."""
    return next((version for version in kind.versions if version in served), kind.version)
