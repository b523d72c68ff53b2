"""Every kind llmpack applies or watches, by group, version, kind and plural. The third-party ones also
name the project that installs their CRD: their objects are applied only once that CRD is established."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    installed_by: str | None = None  # third-party: what installs the CRD

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def crd(self) -> str:
        return f"{self.plural}.{self.group}"


GATEWAY_API_GROUP = "gateway.networking.k8s.io"
INFERENCE_X_GROUP = "inference.networking.x-k8s.io"  # the endpoint picker's experimental kinds and config

INFERENCE_POOL = Kind("inference.networking.k8s.io", "v1", "InferencePool", "inferencepools",
                      "the Gateway API Inference Extension CRDs (v1.x)")
AI_GATEWAY_ROUTE = Kind("aigateway.envoyproxy.io", "v1alpha1", "AIGatewayRoute", "aigatewayroutes",
                        "Envoy AI Gateway (v0.5 or later)")
SECURITY_POLICY = Kind("gateway.envoyproxy.io", "v1alpha1", "SecurityPolicy", "securitypolicies",
                       "Envoy Gateway (v1.6 or later)")
GATEWAY = Kind(GATEWAY_API_GROUP, "v1", "Gateway", "gateways")
THIRD_PARTY = (INFERENCE_POOL, SECURITY_POLICY, AI_GATEWAY_ROUTE)

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
    INFERENCE_POOL, AI_GATEWAY_ROUTE, SECURITY_POLICY,
)


def installs(crd: str) -> str:
    """What installs a third-party CRD, for messages that ask the user to install it."""
    return next(k.installed_by for k in THIRD_PARTY if k.crd == crd and k.installed_by)
