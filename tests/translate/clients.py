"""Requests as clients send them, answered by envoy.send on the translated configuration."""

from __future__ import annotations

from typing import Any

from llmpack.render.auth import MODEL_HEADER, hostname
from tests.translate.cluster_state import CONFIG, Served
from tests.translate.egctl import GATEWAY_NAMESPACE, Translation
from tests.translate.envoy import Outcome, Request, send

GATEWAY = f"{GATEWAY_NAMESPACE}/{CONFIG.external_gateway_name}"
EXTERNAL_HOST, INTERNAL_HOST = hostname(CONFIG, "external"), hostname(CONFIG, "internal")


def with_key(t: Translation, served: Served, key: str | None, **headers: str) -> Outcome:
    """A request for `served`'s model on the external hostname, with `key` as a bearer token.

    The model header is the one AI Gateway's external processor sets from the body's "model" before the
    route is chosen (a live gateway's part); here the request carries it."""
    sent = {MODEL_HEADER: served.model.spec.model.name, **{k.replace("_", "-"): v for k, v in headers.items()}}
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    assert EXTERNAL_HOST
    return send(t, GATEWAY, Request(EXTERNAL_HOST, sent))


def token(*groups: str, **claims: Any) -> dict[str, Any]:
    """The payload of a token our issuer signed for our audience."""
    return {"iss": CONFIG.oidc_issuer, "aud": CONFIG.oidc_audience, "preferred_username": "ada",
            "groups": list(groups), **claims}


def with_token(t: Translation, served: Served, payload: dict[str, Any] | None) -> Outcome:
    """A request for `served`'s model on the internal hostname, with a JWT of `payload` (None: no token)."""
    assert INTERNAL_HOST
    return send(t, GATEWAY, Request(INTERNAL_HOST, {MODEL_HEADER: served.model.spec.model.name}, token=payload))


def cluster_of(served: Served, side: str) -> str:
    """The upstream cluster Envoy Gateway names for the model's rule of one side."""
    return f"httproute/{served.model.namespace}/{served.model.name}-{side}/rule/0"
