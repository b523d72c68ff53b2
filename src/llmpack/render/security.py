"""The security contexts of every pod and container llmpack renders: non-root, no privilege escalation, no
capabilities, the runtime's default seccomp profile."""

from __future__ import annotations

from typing import Any

RESTRICTED: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
}
NONROOT_UID = 65532  # the distroless "nonroot" user: the downloader, the loader, the endpoint picker


def container(uid: int) -> dict[str, Any]:
    return {**RESTRICTED, "runAsUser": uid}


def pod(fs_group: int) -> dict[str, Any]:
    """`fs_group` keeps what the downloader writes readable by vLLM, whatever uid each runs as."""
    return {
        "runAsNonRoot": True,
        "fsGroup": fs_group,
        # Never chown 80 GB of weights on every start; only when the volume root is not ours yet.
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }
