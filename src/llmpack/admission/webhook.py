"""The validating webhook: its configuration (pure) and its serving certificate. Its answers are
admission/reviews.py's; operator/admission_server.py serves them.

It holds only warnings that need other objects (admission/table.py, layer WEBHOOK), so it never blocks:
`failurePolicy: Ignore`. While the operator is down or restarting the API server cannot reach it and admits
every request without those warnings, at once when nothing listens (connection refused, a Service without
endpoints) and after at most TIMEOUT_SECONDS when the operator hangs. Every denial and every other warning is
the API server's own and holds regardless.

The name is the one earlier versions used, with `failurePolicy: Fail`: the chart's upgrade and the operator's
server-side apply at start both overwrite that configuration, so the old policy cannot outlive an upgrade.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmpack.api import GROUP, PLURAL, VERSION
from llmpack.api.passthrough import PASSTHROUGH_PLURAL
from llmpack.wellknown import MANAGED_BY, MANAGED_BY_LABEL

HANDLER_ID = "validate-llmmodel"
CONFIGURATION_NAME = "llmpack-validating-webhook"
WEBHOOK_NAME = f"validate.{PLURAL}.{GROUP}"
TIMEOUT_SECONDS = 2  # a warning is not worth a longer wait


@dataclass(frozen=True)
class Endpoint:
    """Where the API server reaches the webhook: a URL (local runs) or a Service (in-cluster)."""

    url: str | None = None
    service: tuple[str, str, int] | None = None  # (namespace, name, port)

    def client_config(self, ca_bundle: bytes) -> dict[str, Any]:
        config: dict[str, Any] = {"caBundle": base64.b64encode(ca_bundle).decode()}
        if self.service is not None:
            namespace, name, port = self.service
            config["service"] = {"namespace": namespace, "name": name, "port": port, "path": f"/{HANDLER_ID}"}
        else:
            assert self.url is not None
            config["url"] = f"{self.url.rstrip('/')}/{HANDLER_ID}"
        return config


def configuration(endpoint: Endpoint, ca_bundle: bytes) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": CONFIGURATION_NAME, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
        "webhooks": [{
            "name": WEBHOOK_NAME,
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Ignore",
            "matchPolicy": "Equivalent",
            "timeoutSeconds": TIMEOUT_SECONDS,
            "clientConfig": endpoint.client_config(ca_bundle),
            "rules": [{"apiGroups": [GROUP], "apiVersions": [VERSION], "operations": ["CREATE", "UPDATE"],
                       "resources": [PLURAL, PASSTHROUGH_PLURAL], "scope": "Namespaced"}],
        }],
    }


@dataclass(frozen=True)
class ServingCert:
    ca: Path
    cert: Path
    key: Path


def serving_cert(directory: Path, hosts: tuple[str, ...]) -> ServingCert:
    """Use the certificate in `directory` (ca.crt, tls.crt, tls.key: a mounted cert-manager Secret), or make a
    CA and a serving certificate there for `hosts` when there is none."""
    given = ServingCert(directory / "ca.crt", directory / "tls.crt", directory / "tls.key")
    if all(p.exists() for p in (given.ca, given.cert, given.key)):
        return given
    from llmpack import certs  # cryptography (~10 MB of the operator's memory) only to make them

    directory.mkdir(parents=True, exist_ok=True)
    ca = certs.make_ca(directory, "llmpack-webhook-ca")
    leaf = certs.issue(ca, directory, "llmpack-webhook", common_name=hosts[0], hosts=hosts, server=True)
    return ServingCert(ca.cert, leaf.cert, leaf.key)
