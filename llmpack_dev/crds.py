"""Third-party CRDs for the test cluster, taken from their projects' Go modules (the proxy serves them;
nothing is copied into this repository), so every object we apply is checked by the real schema.

Envoy AI Gateway (github.com/envoyproxy/ai-gateway) is not served by the module proxy this project may
use: its published CRDs are test fixtures in ../shared/reference/crds/ (next to the project, as in CI), and
`ai_gateway_route_crd` installs AIGatewayRoute from there for the tests that need routes to exist.
"""

from __future__ import annotations

from pathlib import Path

from llmpack_dev.cluster import LocalCluster
from llmpack_dev.gomod import module_dir

INFERENCE_EXTENSION = "sigs.k8s.io/gateway-api-inference-extension@v1.5.0"
GATEWAY_API = "sigs.k8s.io/gateway-api@v1.4.1"
ENVOY_GATEWAY = "github.com/envoyproxy/gateway@v1.6.0"
CERT_MANAGER = "github.com/cert-manager/cert-manager@v1.19.1"
SHARED_CRDS = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "crds"
AI_GATEWAY = "v0.5.0"  # the version the Serving Pack installs (AIGatewayRoute served as v1alpha1)


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


def ai_gateway_route_crd(version: str = AI_GATEWAY) -> Path:
    """Envoy AI Gateway's AIGatewayRoute, as the project published it at `version`."""
    path = SHARED_CRDS / f"envoy-ai-gateway-{version}" / "aigateway.envoyproxy.io_aigatewayroutes.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: the tests expect the project's shared/ folder next to it")
    return path


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
