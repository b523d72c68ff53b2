"""Names of the objects an LLMModel owns, and the longest LLMModel name they all fit.

Other tools rely on these names (DESIGN.md, "Names other tools rely on"); change none of them.
"""

from __future__ import annotations

# Suffixes of names that must be DNS-1035 labels (Services: at most 63 characters).
LABEL_SUFFIXES = ("", "-epp")
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
