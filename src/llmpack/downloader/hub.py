"""What the Hub says about a repo: the commit a revision resolves to, and its files with sizes and hashes.

Two GETs (`/api/models/{repo}/revision/{rev}`, `/api/models/{repo}/tree/{commit}`), made here rather than
through HfApi so that we decide how they are retried: 429 and 5xx again with backoff and a clamped
Retry-After (HfApi sleeps whatever a listing's Retry-After says); a refused connection at once (the Hub is
down: a complete directory is then trusted). Errors are read as huggingface_hub reads them (status and
X-Error-Code). Everything in an answer is checked before it is used: a repo is input anyone can publish.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import quote, urlsplit

from llmpack.downloader.connection import ConnectError, Pool, TransportError
from llmpack.downloader.errors import (
    DownloadError,
    GatedError,
    NetworkError,
    NotFoundError,
    RevisionNotFoundError,
    UnsafeListingError,
)
from llmpack.downloader.names import listing_problem, shown
from llmpack.downloader.plan import RemoteFile
from llmpack.downloader.retry import RETRY_STATUS, Attempts, retry_after

COMMIT = re.compile(r"^[0-9a-f]{40}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_PAGES = 10_000
MAX_ANSWER = 64 << 20  # an API answer larger than this is not one the Hub sends
_LINK = re.compile(r"<([^>]*)>([^,<]*)")


def is_commit(revision: str) -> bool:
    return bool(COMMIT.match(revision))


def _clean(token: str | None) -> str | None:
    return (token or "").replace("\r", "").replace("\n", "").strip() or None


def _token_path() -> str:
    home = os.path.expandvars(os.path.expanduser(os.environ.get(
        "HF_HOME", os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")),
                                "huggingface"))))
    return os.path.expandvars(os.path.expanduser(os.environ.get("HF_TOKEN_PATH", os.path.join(home, "token"))))


def token() -> str | None:
    """The token huggingface_hub's get_token finds. Importing huggingface_hub costs every start 70-130 ms (the
    warm path's whole budget), so the two common cases are read here as it reads them: HF_TOKEN (else
    HUGGING_FACE_HUB_TOKEN) when no OIDC exchange is asked for, and none at all when there is no token file
    either. A saved login (whose OAuth token may need refreshing) or OIDC is left to huggingface_hub."""
    if not os.environ.get("HF_OIDC_RESOURCE"):
        if found := _clean(os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")):
            return found
        if not os.path.exists(_token_path()):
            return None
    from huggingface_hub import get_token

    return get_token()


def request_headers() -> dict[str, str]:
    """The token and a user agent. Not build_hf_headers: unless telemetry is off, it first fetches a
    registry of AI agents from the Hub, which costs every start (the fast path too) a request and about half
    a second, and more when the Hub is down."""
    from llmpack import __version__

    headers = {"user-agent": f"llmpack/{__version__}"}
    if found := token():
        headers["authorization"] = f"Bearer {found}"
    return headers


@dataclass(frozen=True)
class Answer:
    """An API answer, read whole."""

    status: int
    headers: Message  # case-insensitive, as HTTP headers are
    body: bytes


def hub_error(response: Answer, repo_id: str, revision: str) -> DownloadError:
    """What a 4xx from the Hub's API means, as huggingface_hub's hf_raise_for_status reads it."""
    code, status = response.headers.get("X-Error-Code", ""), response.status
    if code == "GatedRepo":
        return GatedError(f"{repo_id} is gated and this token has no access: accept its terms on the Hub, then "
                          "give the token with HF_TOKEN (spec.model.authSecretName, key HF_TOKEN)")
    if code == "RevisionNotFound":
        return RevisionNotFoundError(f"{repo_id} has no revision {revision!r}: use a branch, tag or commit it has")
    if code == "RepoNotFound" or status == 404:
        return NotFoundError(f"{repo_id} was not found (or is private and needs a token): check spec.model.name "
                             "and spec.model.authSecretName")
    if status in (401, 403):
        return GatedError(f"{repo_id} refused this token ({status}): set spec.model.authSecretName to a Secret "
                          "with a token that can read it")
    return NetworkError(f"the Hub answered {status} for {repo_id} at {revision!r}: check HF_ENDPOINT")


@dataclass
class Hub:
    pool: Pool
    endpoint: str
    headers: dict[str, str]
    repo_id: str

    def _api(self, *path: str) -> str:
        return "/".join([self.endpoint.rstrip("/"), "api", "models", self.repo_id, *path])

    def _get(self, url: str, revision: str, what: str) -> Answer:
        """One API GET, retried on 429/5xx and on answers cut short, never on a refused connection."""
        attempts = Attempts(what)
        while True:
            try:
                with self.pool.get(url, self.headers) as raw:
                    response = Answer(raw.status, raw.headers, raw.read(MAX_ANSWER))
            except ConnectError as exc:
                raise NetworkError(f"cannot reach the Hub for {self.repo_id} at {self.endpoint} ({exc}): check "
                                   "HF_ENDPOINT and the network") from None
            except TransportError as exc:
                attempts.failed(str(exc))
                continue
            if response.status in RETRY_STATUS:
                attempts.failed(f"the Hub answered {response.status}", retry_after(response.headers))
                continue
            if response.status != 200:
                raise hub_error(response, self.repo_id, revision)
            return response

    def _json(self, response: Answer, what: str) -> Any:
        try:
            return json.loads(response.body)
        except ValueError:
            raise UnsafeListingError(f"{what}: the Hub's answer is not JSON; check HF_ENDPOINT") from None

    def resolve(self, revision: str) -> str:
        """The commit a branch, tag or commit names."""
        what = f"the revision {revision!r} of {self.repo_id}"
        answer = self._json(self._get(self._api("revision", quote(revision, safe="")), revision, what), what)
        sha = answer.get("sha") if isinstance(answer, dict) else None
        if not isinstance(sha, str) or not is_commit(sha):
            raise UnsafeListingError(f"{what}: the Hub's answer names no commit (40 hex digits); check HF_ENDPOINT")
        return sha

    def list_files(self, commit: str) -> list[RemoteFile]:
        """Every file of the commit, each name checked (relative, normalised, no '..', no NUL or backslash,
        within length limits) before the caller writes anything."""
        what = f"the listing of {self.repo_id} at {commit[:12]}"
        url: str | None = self._api("tree", commit) + "?recursive=true&expand=false"
        seen: set[str] = set()
        files: list[RemoteFile] = []
        while url is not None:
            if url in seen or len(seen) >= MAX_PAGES:
                raise UnsafeListingError(f"{what}: the Hub's pages do not end; check HF_ENDPOINT")
            seen.add(url)
            response = self._get(url, commit, what)
            page = self._json(response, what)
            if not isinstance(page, list):
                raise UnsafeListingError(f"{what}: the Hub's answer is not a list of files; check HF_ENDPOINT")
            files += [f for entry in page if (f := _file(entry, what)) is not None]
            url = _next_page(response, self.endpoint, what)
        if (bad := listing_problem(f.path for f in files)) is not None:
            name, problem = bad
            raise UnsafeListingError(f"{what} names the file {shown(name)}, which {problem}: refusing to write "
                                     f"any file of {self.repo_id}")
        return files


def next_link(header: str) -> str | None:
    """The URL a Link header names rel="next" (RFC 8288), if any."""
    for match in _LINK.finditer(header):
        for param in match.group(2).split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "rel" and "next" in value.strip().strip('"').lower().split():
                return match.group(1).strip()
    return None


def _next_page(response: Answer, endpoint: str, what: str) -> str | None:
    """The next page's URL; only on the Hub's own origin, which our token is meant for."""
    url = next_link(response.headers.get("Link", ""))
    if url is None:
        return None
    here, there = urlsplit(endpoint), urlsplit(url)
    if (there.scheme, there.netloc) != (here.scheme, here.netloc):
        raise UnsafeListingError(f"{what}: the Hub's next page is on another host ({there.netloc}); refusing to "
                                 "send the token there")
    return url


def _file(entry: object, what: str) -> RemoteFile | None:
    """A listed file with the size and hash we will hold its bytes to; None for a folder."""
    if not isinstance(entry, dict):
        raise UnsafeListingError(f"{what}: an entry is not an object; check HF_ENDPOINT")
    if entry.get("type") == "directory":
        return None
    path, size, oid, lfs = entry.get("path"), entry.get("size"), entry.get("oid"), entry.get("lfs")
    if not isinstance(path, str):
        raise UnsafeListingError(f"{what}: an entry has no path; check HF_ENDPOINT")
    if type(size) is not int or size < 0:
        raise UnsafeListingError(f"{what}: the file {shown(path)} has no valid size; check HF_ENDPOINT")
    if lfs is not None:
        sha = lfs.get("oid") if isinstance(lfs, dict) else None
        if not isinstance(sha, str) or not SHA256.match(sha):
            raise UnsafeListingError(f"{what}: the file {shown(path)} has no valid sha256; check HF_ENDPOINT")
        return RemoteFile(path=path, size=size, sha256=sha)
    if oid is not None and not (isinstance(oid, str) and COMMIT.match(oid)):
        raise UnsafeListingError(f"{what}: the file {shown(path)} has no valid blob id; check HF_ENDPOINT")
    return RemoteFile(path=path, size=size, git_sha1=oid)
