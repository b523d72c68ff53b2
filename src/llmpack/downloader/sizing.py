"""`llmpack download --size-only`: ask the Hub what the revision's files take, before any byte is fetched.

It resolves the revision to a commit, lists that commit's files and applies the same include/exclude rules as
a download, then writes {repo, revision, commit, bytes, files} onto the model's Lease (SIZE_ANNOTATION), where
the operator reads it to size the PVC, refuse one that is too small and pin the commit every replica serves.
It runs in the pod that holds the token of a gated model: the operator never reads the token.

A Hub out of reach is retried for as long as the pod lives (backing off up to a minute), each failure written
onto the Lease so the model says why it waits; any other failure (gated, not found) is written and ends the run
with the download's exit code.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmpack.downloader.connection import Pool
from llmpack.downloader.errors import DownloadError, NetworkError, UsageError
from llmpack.downloader.hub import Hub, is_commit, request_headers
from llmpack.downloader.names import endpoint_problem, repo_id_problem
from llmpack.downloader.plan import select
from llmpack.wellknown import SIZE_ANNOTATION

MAX_WAIT = 60.0


@dataclass(frozen=True)
class Sized:
    commit: str
    bytes: int
    files: int


def measure(repo_id: str, revision: str, include: tuple[str, ...], exclude: tuple[str, ...], endpoint: str,
            timeout: float) -> Sized:
    """The commit `revision` resolves to and what its selected files take; raises DownloadError subclasses."""
    with Pool(timeout=timeout) as pool:
        hub = Hub(pool, endpoint, request_headers(), repo_id)
        commit = revision if is_commit(revision) else hub.resolve(revision)
        files = select(hub.list_files(commit), include, exclude)  # every name checked, as for a download
    return Sized(commit, sum(f.size for f in files), len(files))


Report = Callable[[dict[str, Any]], None]


def lease_reporter() -> Report | None:
    """Writes a report onto the Lease the operator named (LLMPACK_LEASE_NAME), or None outside Kubernetes."""
    name = os.environ.get("LLMPACK_LEASE_NAME")
    if not name:
        return None
    from lightkube import Client, KubeConfig
    from lightkube.resources.coordination_v1 import Lease

    try:
        client = Client(KubeConfig.from_env(), field_manager="llmpack-downloader")
    except Exception as exc:  # no in-cluster account, no kubeconfig: lightkube's errors vary
        raise NetworkError(f"LLMPACK_LEASE_NAME is set but there is no Kubernetes API to report on ({exc})") from None
    namespace = os.environ.get("POD_NAMESPACE") or client.namespace

    def report(value: dict[str, Any]) -> None:
        # A merge patch of our annotation only: the holder's renewals and progress are left as they are.
        try:
            client.patch(Lease, name, namespace=namespace,
                         obj={"metadata": {"annotations": {SIZE_ANNOTATION: json.dumps(value)}}})
        except Exception as exc:  # ApiError or the transport's: either way the operator would not learn it
            raise NetworkError(f"cannot write the model's size onto the Lease {namespace}/{name}: {exc}; check the "
                               "model's Role and ServiceAccount") from None

    return report


def run_size(repo_id: str, revision: str | None, include: tuple[str, ...], exclude: tuple[str, ...],
             say: Callable[[dict[str, Any]], None], report: Report | None = None,
             sleep: Callable[[float], None] = time.sleep) -> Sized:
    revision = revision or "main"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    if (problem := repo_id_problem(repo_id)) is not None:
        raise UsageError(f"{repo_id!r} is not a Hugging Face repo id: it {problem} (e.g. Qwen/Qwen3-8B); "
                         "check spec.model.name")
    if (problem := endpoint_problem(endpoint)) is not None:
        raise UsageError(f"HF_ENDPOINT {endpoint!r} {problem}, e.g. https://huggingface.co")
    timeout = float(os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT", "10") or 10)
    wait = float(os.environ.get("LLMPACK_RETRY_SECONDS", "0.5") or 0.5)
    what = {"repo": repo_id, "revision": revision}
    publish = report or (lambda value: None)
    while True:
        try:
            sized = measure(repo_id, revision, include, exclude, endpoint, timeout)
        except NetworkError as exc:
            message = " ".join(str(exc).split())
            publish({**what, "error": message, "retrying": True})
            say({"phase": "sizing", "retrying_in": round(wait, 2), "error": message})
            sleep(wait)
            wait = min(wait * 2, MAX_WAIT)
            continue
        except DownloadError as exc:
            publish({**what, "error": " ".join(str(exc).split()), "retrying": False})
            raise
        publish({**what, "commit": sized.commit, "bytes": sized.bytes, "files": sized.files})
        say({"phase": "sized", "commit": sized.commit, "bytes": sized.bytes, "files": sized.files})
        return sized
