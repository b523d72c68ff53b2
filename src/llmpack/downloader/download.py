"""`llmpack download`: the seed's `hf download <repo> --local-dir DIR [--revision R]`, done so that a shared
directory is filled exactly once, survives crashes, and is never presented complete unless it is.

1. Fast path: a completion record for the same resolved commit and filters, and every file there with its
   recorded size (stat only) -> exit 0. With the Hub unreachable, a record for the same revision is trusted,
   so vLLM can start while the Hub is down.
2. Otherwise take the directory's lock (others wait, saying who holds it), look again (the holder may have
   just finished), plan, check free space before writing a byte, fetch what is missing in parallel, and
   write the record last.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from huggingface_hub import constants
from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]  # public, not re-exported

from llmpack.downloader import hub
from llmpack.downloader.errors import NetworkError, NoSpaceError
from llmpack.downloader.lock import DirectoryLock, Holdable, Owner
from llmpack.downloader.plan import (
    STATE_DIR,
    Plan,
    RemoteFile,
    file_is_valid,
    forget_record,
    partial_path,
    read_record,
    select,
    stat_complete,
    write_record,
)
from llmpack.downloader.progress import Progress
from llmpack.downloader.transfer import Source, fetch
from llmpack.quantity import format_bytes

log = logging.getLogger("llmpack.download")
if TYPE_CHECKING:
    from huggingface_hub import HfApi


@dataclass(frozen=True)
class Request:
    repo_id: str
    local_dir: Path
    revision: str = "main"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    verify: bool = False
    workers: int = 8
    progress_every: float = field(default_factory=lambda: float(os.environ.get("LLMPACK_PROGRESS_SECONDS", "5")))
    stale_after: float = field(default_factory=lambda: float(os.environ.get("LLMPACK_LOCK_STALE_SECONDS", "30")))


def say(event: dict[str, object]) -> None:
    sys.stderr.write(json.dumps(event) + "\n")
    sys.stderr.flush()


def _complete(request: Request, commit_of: Callable[[], str]) -> str | None:
    """The commit the directory is complete for, when it is (the fast path); None otherwise."""
    record = read_record(request.local_dir)
    if record is None or request.verify or not record.covers(request.repo_id, request.include, request.exclude):
        return None
    try:
        commit = commit_of()
    except NetworkError as exc:
        if record.revision != request.revision:
            raise
        say({"phase": "offline", "message": f"Hub unreachable ({exc}); trusting the completed download of "
             f"{record.revision} at {record.commit}"})
        commit = record.commit
    return commit if commit == record.commit and stat_complete(request.local_dir, record) else None


def _plan(request: Request, api: HfApi, commit: str) -> Plan:
    files = select(hub.list_files(api, request.repo_id, commit), request.include, request.exclude)
    return Plan(request.repo_id, request.revision, commit, files, request.include, request.exclude)


def _preflight(request: Request, missing_bytes: int, plan: Plan) -> None:
    free = shutil.disk_usage(request.local_dir).free
    if missing_bytes > free:
        ask = format_bytes(int(plan.total_bytes * 1.2))
        raise NoSpaceError(f"not enough space in {request.local_dir}: {format_bytes(missing_bytes)} to fetch, "
                           f"{format_bytes(free)} free; the model takes {format_bytes(plan.total_bytes)}, so ask "
                           f"for a volume of at least {ask} (spec.model.storage.size)")


def _fetch_all(request: Request, plan: Plan, lock: Holdable) -> None:
    todo, done_bytes = [], 0
    for remote in plan.files:
        if file_is_valid(request.local_dir / remote.path, remote):
            done_bytes += remote.size
        else:
            todo.append(remote)
    partial = sum(partial_path(request.local_dir, r).stat().st_size for r in todo
                  if partial_path(request.local_dir, r).exists())
    _preflight(request, sum(r.size for r in todo) - partial, plan)
    progress = Progress(plan.total_bytes, len(plan.files), interval=request.progress_every)
    progress.add(done_bytes)
    progress.files_done = len(plan.files) - len(todo)
    lock.progress = lambda: {**progress.snapshot(), "holder": lock.holder, "commit": plan.commit}
    source = Source(constants.ENDPOINT, request.repo_id, plan.commit, build_hf_headers())
    timeout = httpx.Timeout(float(os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT", "10")), connect=10.0)
    progress.start()
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True) as client, \
                ThreadPoolExecutor(max_workers=request.workers, thread_name_prefix="fetch") as pool:
            def one(remote: RemoteFile) -> None:
                fetch(client, source, request.local_dir, remote, progress.add)
                progress.file_done()

            for future in [pool.submit(one, r) for r in sorted(todo, key=lambda r: -r.size)]:
                future.result()
    except BaseException:
        progress.stop("failed")
        raise
    write_record(request.local_dir, plan)
    progress.stop("complete")


def _lock(request: Request) -> Holdable:
    """The Lease the operator named (exactly one downloader across nodes), else a lock in the directory."""
    name = os.environ.get("LLMPACK_LEASE_NAME")
    if not name:
        return DirectoryLock(request.local_dir / STATE_DIR, stale_after=request.stale_after)
    # Imported here: the Kubernetes client costs a tenth of a second the fast path should not pay.
    from lightkube import Client, KubeConfig

    from llmpack.downloader.lease import LeaseLock

    client = Client(KubeConfig.from_env(), field_manager="llmpack-downloader")
    return LeaseLock(client, name, os.environ.get("POD_NAMESPACE") or client.namespace,
                     duration=int(os.environ.get("LLMPACK_LEASE_SECONDS", "15")),
                     renew_every=float(os.environ.get("LLMPACK_LEASE_RENEW_SECONDS", "5")))


def download(request: Request) -> None:
    """Fill `request.local_dir` with the verified files of the revision; raises DownloadError subclasses."""
    started = time.monotonic()
    request.local_dir.mkdir(parents=True, exist_ok=True)
    @functools.cache
    def api() -> HfApi:
        from huggingface_hub import HfApi  # only when the fast path is not enough

        return HfApi(endpoint=constants.ENDPOINT)

    @functools.cache
    def commit_of() -> str:
        """The revision's commit, asked of the Hub once per run (errors are not cached: asked again)."""
        if hub.is_commit(request.revision):
            return request.revision
        return (hub.resolve_quickly(constants.ENDPOINT, build_hf_headers(), request.repo_id, request.revision)
                or hub.resolve(api(), request.repo_id, request.revision))

    if (commit := _complete(request, commit_of)) is not None:
        say({"phase": "complete", "fast_path": True, "commit": commit,
             "seconds": round(time.monotonic() - started, 3)})
        return
    last_said = [0.0]

    def waiting(owner: Owner | None) -> None:
        if time.monotonic() - last_said[0] >= request.progress_every:
            last_said[0] = time.monotonic()
            say({"phase": "waiting", "holder": owner.holder if owner else None,
                 "heartbeat_age": round(owner.age(), 1) if owner else None})

    lock = _lock(request)
    with lock.held(waiting):
        if (commit := _complete(request, commit_of)) is not None:
            say({"phase": "complete", "fast_path": True, "commit": commit, "waited": True,
                 "seconds": round(time.monotonic() - started, 3)})
            return
        plan = _plan(request, api(), commit_of())
        say({"phase": "planned", "commit": plan.commit, "files": len(plan.files), "bytes": plan.total_bytes,
             "holder": lock.holder})
        forget_record(request.local_dir)
        _fetch_all(request, plan, lock)


def run(repo_id: str, local_dir: Path, revision: str | None, include: Sequence[str], exclude: Sequence[str],
        verify: bool, workers: int) -> None:
    download(Request(repo_id, local_dir, revision or "main", tuple(include), tuple(exclude), verify, workers))
