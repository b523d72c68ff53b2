"""Third-party CRDs for the test cluster, taken from their projects' Go modules (the proxy serves them;
nothing is copied into this repository), so every object we apply is checked by the real schema.

Envoy AI Gateway (github.com/envoyproxy/ai-gateway) is not served by the module proxy this project may
use: its published CRDs, unchanged, are in `../shared/reference/crds/` beside the repository (see the
README there), one folder per release: v0.5.0 (what the Serving Pack installs) and v1.1.0.
"""

from __future__ import annotations

from pathlib import Path

from llmpack_dev.cluster import LocalCluster
from llmpack_dev.gomod import module_dir

INFERENCE_EXTENSION = "sigs.k8s.io/gateway-api-inference-extension@v1.5.0"
GATEWAY_API = "sigs.k8s.io/gateway-api@v1.4.1"
ENVOY_GATEWAY = "github.com/envoyproxy/gateway@v1.6.0"
CERT_MANAGER = "github.com/cert-manager/cert-manager@v1.19.1"
PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator@v0.85.0"
REFERENCE_CRDS = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "crds"
AI_GATEWAY_RELEASES = ("v0.5.0", "v1.1.0")


def inference_extension_crds() -> list[Path]:
    """InferencePool (inference.networking.k8s.io/v1) and the x-k8s objectives, rewrites and imports."""
    return sorted((module_dir(INFERENCE_EXTENSION) / "config" / "crd" / "bases").glob("*.yaml"))


def gateway_api_crds() -> list[Path]:
    """The standard channel: Gateway, HTTPRoute, ReferenceGrant and friends."""
    return sorted((module_dir(GATEWAY_API) / "config" / "crd" / "standard").glob("*.yaml"))


def security_policy_crd() -> Path:
    """Envoy Gateway's SecurityPolicy (API keys, JWT, authorization)."""
    return (module_dir(ENVOY_GATEWAY) / "charts" / "gateway-helm" / "crds" / "generated"
            / "gateway.envoyproxy.io_securitypolicies.yaml")


def cert_manager_crds() -> list[Path]:
    """Certificate and Issuer: what the chart creates in its cert-manager modes."""
    crds = module_dir(CERT_MANAGER) / "deploy" / "crds"
    return [crds / "cert-manager.io_certificates.yaml", crds / "cert-manager.io_issuers.yaml"]


def pod_monitor_crd() -> Path:
    """The Prometheus Operator's PodMonitor (monitoring.coreos.com/v1)."""
    return (module_dir(PROMETHEUS_OPERATOR) / "example" / "prometheus-operator-crd"
            / "monitoring.coreos.com_podmonitors.yaml")


def ai_gateway_crds(release: str) -> list[Path]:
    """Envoy AI Gateway's CRDs of one release (AIGatewayRoute, AIServiceBackend, BackendSecurityPolicy)."""
    if release not in AI_GATEWAY_RELEASES:
        raise ValueError(f"no Envoy AI Gateway CRDs for {release}: there are {', '.join(AI_GATEWAY_RELEASES)}")
    folder = REFERENCE_CRDS / f"envoy-ai-gateway-{release}"
    crds = sorted(folder.glob("*.yaml"))
    if not crds:
        raise FileNotFoundError(f"{folder} holds no CRDs: the project expects shared/reference/crds/ beside it")
    return crds


def install(cluster: LocalCluster, crds: list[Path]) -> None:
    for crd in crds:
        cluster.kubectl("apply", "--server-side", "-f", str(crd))
    for crd in crds:
        cluster.kubectl("wait", "--for=condition=Established", "-f", str(crd), "--timeout=60s")


def uninstall(cluster: LocalCluster, crds: list[Path]) -> None:
    for crd in crds:
        cluster.kubectl("delete", "-f", str(crd), "--ignore-not-found", "--wait=false")


def routing_crds() -> list[Path]:
    """Every routing CRD the proxy serves: the inference extension, Gateway API and Envoy's SecurityPolicy."""
    return [*inference_extension_crds(), *gateway_api_crds(), security_policy_crd()]


def service_monitor_crd() -> Path:
    """The Prometheus Operator's ServiceMonitor (monitoring.coreos.com/v1), which the chart makes on request."""
    return (module_dir(PROMETHEUS_OPERATOR) / "example" / "prometheus-operator-crd"
            / "monitoring.coreos.com_servicemonitors.yaml")
