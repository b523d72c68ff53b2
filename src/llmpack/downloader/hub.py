"""What the Hub says about a repo: the commit a revision resolves to, and its files with sizes and hashes.
huggingface_hub does this well (endpoint, token, error codes); we only translate its errors."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote

from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
)
from huggingface_hub.errors import (
    RevisionNotFoundError as HubRevisionNotFound,
)

from llmpack.downloader.errors import GatedError, NetworkError, NotFoundError, RevisionNotFoundError
from llmpack.downloader.plan import RemoteFile

if TYPE_CHECKING:
    from huggingface_hub import HfApi

COMMIT = re.compile(r"^[0-9a-f]{40}$")


def is_commit(revision: str) -> bool:
    return bool(COMMIT.match(revision))


def _translate(repo_id: str, revision: str, exc: Exception) -> Exception:
    if isinstance(exc, GatedRepoError):
        return GatedError(f"{repo_id} is gated and this token has no access: accept its terms on the Hub, then "
                          "give the token with HF_TOKEN (spec.model.authSecretName, key HF_TOKEN)")
    if isinstance(exc, HubRevisionNotFound):
        return RevisionNotFoundError(f"{repo_id} has no revision {revision!r}: use a branch, tag or commit it has")
    if isinstance(exc, RepositoryNotFoundError):
        return NotFoundError(f"{repo_id} was not found (or is private and needs a token): check spec.model.name "
                             "and spec.model.authSecretName")
    if isinstance(exc, HfHubHTTPError) and exc.response is not None and exc.response.status_code in (401, 403):
        return GatedError(f"{repo_id} refused this token ({exc.response.status_code}): set spec.model.authSecretName "
                          "to a Secret with a token that can read it")
    return NetworkError(f"cannot reach the Hub for {repo_id}: {exc}")


def resolve_quickly(endpoint: str, headers: dict[str, str], repo_id: str, revision: str) -> str | None:
    """The commit of a revision in one GET, for the fast path: importing HfApi alone costs a third of a
    second, more than a warm start should take. Anything but a clean answer returns None, and the caller
    asks HfApi, whose errors we translate precisely."""
    import httpx

    url = f"{endpoint.rstrip('/')}/api/models/{repo_id}/revision/{quote(revision, safe='')}"
    try:
        response = httpx.get(url, headers=headers, timeout=10)
        sha = response.json().get("sha") if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return sha if isinstance(sha, str) and is_commit(sha) else None


# huggingface_hub's transport differs between versions (httpx, httpx2, requests): whatever it raises
# while reaching the Hub that is not one of its own HTTP errors is a network failure to us.
def resolve(api: HfApi, repo_id: str, revision: str) -> str:
    """The commit a branch, tag or commit names."""
    try:
        info = api.model_info(repo_id, revision=revision)
    except Exception as exc:
        raise _translate(repo_id, revision, exc) from None
    assert info.sha is not None
    return info.sha


def list_files(api: HfApi, repo_id: str, commit: str) -> list[RemoteFile]:
    try:
        entries = list(api.list_repo_tree(repo_id, revision=commit, recursive=True))
    except Exception as exc:
        raise _translate(repo_id, commit, exc) from None
    files = []
    for entry in entries:
        if getattr(entry, "size", None) is None:
            continue  # a folder
        lfs = getattr(entry, "lfs", None)
        files.append(RemoteFile(path=entry.path, size=int(entry.size),  # type: ignore[union-attr]
                                sha256=lfs.sha256 if lfs is not None else None,
                                git_sha1=None if lfs is not None else getattr(entry, "blob_id", None)))
    return files
