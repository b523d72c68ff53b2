"""The HTTPS listeners every model's routes attach to, merged into the configured Gateways (opt-in:
`routing.manageListeners`). Applied with a field manager of their own, so server-side apply changes only
these two listeners (Gateway listeners are a map keyed by name) and never anyone else's."""

from __future__ import annotations

from typing import Any

from llmpack.config import Config
from llmpack.kinds import GATEWAY
from llmpack.render.auth import LISTENERS, SIDES, Side, gateway, hostname

FIELD_MANAGER = "llmpack-listeners"
HTTPS_PORT = 443


def listener(config: Config, side: Side) -> dict[str, Any]:
    ref: dict[str, Any] = {"group": "", "kind": "Secret", "name": config.tls_secret_name}
    if config.tls_secret_namespace:
        ref["namespace"] = config.tls_secret_namespace
    return {
        "name": LISTENERS[side],
        "hostname": hostname(config, side),
        "port": HTTPS_PORT,
        "protocol": "HTTPS",
        "tls": {"mode": "Terminate", "certificateRefs": [ref]},
        "allowedRoutes": {"namespaces": {"from": "All"}},  # models live in any namespace
    }


def gateway_patches(config: Config) -> list[dict[str, Any]]:
    """One apply body per Gateway (both sides may share one), holding only our listeners."""
    if not config.base_domain:
        raise ValueError("routing.baseDomain is required to manage listeners (their hostnames derive from it)")
    by_gateway: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for side in SIDES:
        by_gateway.setdefault(gateway(config, side), []).append(listener(config, side))
    return [{"apiVersion": GATEWAY.api_version, "kind": GATEWAY.kind,
             "metadata": {"name": name, "namespace": namespace}, "spec": {"listeners": listeners}}
            for (namespace, name), listeners in sorted(by_gateway.items())]
