"""Names of the objects an LLMModel owns, and the longest LLMModel name they all fit.

Other tools rely on these names (the key manager, dashboards, the Serving Pack's own manifests): change
none of them. Every renderer and the operator take a child's name from here.
"""

from __future__ import annotations

import hashlib

EPP_SUFFIX = "-epp"
# Suffixes of names that must be DNS-1035 labels (Services: at most 63 characters).
LABEL_SUFFIXES = ("", EPP_SUFFIX)
LABEL_MAX = 63
# The LLMModel name is also a label value (app.kubernetes.io/instance), so it obeys the same limit.
MAX_MODEL_NAME_LENGTH = LABEL_MAX - max(len(s) for s in LABEL_SUFFIXES)
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"


def storage_pvc(model: str) -> str:
    return f"{model}-model-storage"


def deployment(model: str) -> str:
    return model


def service(model: str) -> str:
    return model


def service_account(model: str) -> str:
    return model


def download_lease(model: str) -> str:
    return f"{model}-model-download"


def download_job(model: str, identity: str) -> str:
    """One Job per weights identity (a Job's pod template cannot change). Its name becomes a label value
    (job-name), so it must fit 63 characters: long model names are shortened with a hash of the full name."""
    return _job(model, f"-dl-{identity[:8]}")


def size_job(model: str, identity: str) -> str:
    """The Job that asks the Hub for the weights' size, once per weights identity (named as download_job)."""
    return _job(model, f"-size-{identity[:8]}")


def _job(model: str, suffix: str) -> str:
    if len(model) + len(suffix) <= LABEL_MAX:
        return f"{model}{suffix}"
    digest = hashlib.sha256(model.encode()).hexdigest()[:8]
    return f"{model[:LABEL_MAX - len(suffix) - 9].rstrip('-')}-{digest}{suffix}"


def network_policy(model: str) -> str:
    return f"{model}-deny-direct"


def inference_pool(model: str) -> str:
    return model


def epp(model: str) -> str:
    """The endpoint picker's ServiceAccount, Role, RoleBinding, Service and Deployment."""
    return f"{model}{EPP_SUFFIX}"


def epp_config(model: str) -> str:
    return f"{epp(model)}-config"


def pod_monitor(model: str) -> str:
    return model


def route(model: str, side: str) -> str:
    """The AIGatewayRoute of one side (external, internal), and the HTTPRoute AI Gateway generates from it."""
    return f"{model}-{side}"


def policy(model: str, side: str) -> str:
    return f"{route(model, side)}-auth"


def api_keys(model: str) -> str:
    """The Secret a key manager fills: data key = client id, value = API key."""
    return f"{model}-api-keys"


def key_metadata(model: str) -> str:
    return f"{model}-api-key-metadata"


def key_manager_role(model: str) -> str:
    """The key manager's Role and RoleBinding for one model's key objects."""
    return f"{model}-key-manager"


def provider_backend(passthrough: str) -> str:
    """A PassthroughModel's Envoy Gateway Backend: the provider's hostname and port."""
    return f"{passthrough}-backend"


def provider_tls(passthrough: str) -> str:
    return f"{passthrough}-backend-tls"


def ai_service_backend(passthrough: str) -> str:
    return passthrough


def upstream_auth(passthrough: str) -> str:
    """The BackendSecurityPolicy that sends the provider's API key upstream."""
    return f"{passthrough}-upstream-auth"
