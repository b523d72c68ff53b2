"""Fetch one file: stream into a partial file beside the target, resume it with Range after a crash or a
dropped connection, hash while writing, and move it into place only when the hash is right."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from llmpack.downloader.errors import GatedError, NetworkError, NotFoundError, VerificationError
from llmpack.downloader.plan import Hasher, RemoteFile, hash_file, partial_path

CHUNK = 1 << 20
RETRIES = 6
MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True)
class Source:
    """Where a repo's files are served from (HF_ENDPOINT) and with which headers (token, user agent)."""

    endpoint: str
    repo_id: str
    commit: str
    headers: dict[str, str]

    def url(self, path: str) -> str:
        return f"{self.endpoint.rstrip('/')}/{self.repo_id}/resolve/{self.commit}/{path}"


def _retry_after(response: httpx.Response, attempt: int) -> float:
    try:
        return min(float(response.headers.get("Retry-After", "")), MAX_RETRY_AFTER)
    except ValueError:
        return min(2.0 ** attempt, MAX_RETRY_AFTER)


def _resume_state(part: Path, remote: RemoteFile) -> tuple[Hasher, int]:
    """Hash what an earlier attempt left so the transfer continues where it stopped."""
    algorithm = remote.expected[0] if remote.expected else "sha256"
    if not part.exists() or part.stat().st_size > remote.size:
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(b"")
        return Hasher(algorithm, remote.size), 0
    return hash_file(part, algorithm, remote.size)


def _stream(client: httpx.Client, source: Source, remote: RemoteFile, part: Path,
            on_bytes: Callable[[int], None]) -> Hasher:
    """Bring the partial file to full size, reconnecting with Range when the connection drops."""
    hasher, have = _resume_state(part, remote)
    on_bytes(have)
    attempt = 0
    while have < remote.size or remote.size == 0:
        headers = dict(source.headers, **({"Range": f"bytes={have}-"} if have else {}))
        try:
            with client.stream("GET", source.url(remote.path), headers=headers) as response:
                if response.status_code in (429, 503):
                    attempt += 1
                    if attempt > RETRIES:
                        raise NetworkError(f"{remote.path}: the Hub kept answering {response.status_code}")
                    time.sleep(_retry_after(response, attempt))
                    continue
                if response.status_code in (401, 403):
                    raise GatedError(f"{remote.path}: the Hub refused the token ({response.status_code}): set "
                                     "spec.model.authSecretName to a Secret whose HF_TOKEN can read this repo")
                if response.status_code == 404:
                    raise NotFoundError(f"{remote.path} is listed but cannot be fetched (404)")
                response.raise_for_status()
                if have and response.status_code != 206:  # the server ignored Range: start over
                    hasher, have = Hasher(hasher.algorithm, remote.size), 0
                    part.write_bytes(b"")
                with part.open("r+b") as out:
                    out.seek(have)
                    for chunk in response.iter_bytes(CHUNK):
                        out.write(chunk)
                        hasher.update(chunk)
                        have += len(chunk)
                        on_bytes(len(chunk))
                    out.flush()
                    os.fsync(out.fileno())
                if remote.size == 0:
                    break
        except (httpx.TransportError, httpx.HTTPStatusError) as exc:  # dropped, stalled, reset, 5xx
            attempt += 1
            if attempt > RETRIES:
                raise NetworkError(f"{remote.path}: transfer failed after {RETRIES} retries: {exc}") from None
            time.sleep(min(2.0 ** attempt / 4, 10.0))
    return hasher


def fetch(client: httpx.Client, source: Source, local_dir: Path, remote: RemoteFile,
          on_bytes: Callable[[int], None]) -> None:
    """Put one verified file in place. A file that fails verification is fetched again once; a second
    failure names the file and both hashes."""
    part, target = partial_path(local_dir, remote), local_dir / remote.path
    for attempt in (1, 2):
        hasher = _stream(client, source, remote, part, on_bytes)
        got = hasher.hexdigest()
        if remote.expected is None or got == remote.expected[1]:
            target.parent.mkdir(parents=True, exist_ok=True)
            part.replace(target)
            return
        part.unlink()
        on_bytes(-remote.size)
        if attempt == 2:
            raise VerificationError(f"{remote.path}: downloaded twice and both times the {remote.expected[0]} "
                                    f"was {got}, not {remote.expected[1]}: the source serves corrupt bytes")
