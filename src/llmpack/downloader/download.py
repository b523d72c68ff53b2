"""`llmpack download`: the seed's `hf download <repo> --local-dir DIR [--revision R]`, done so that a shared
directory is filled exactly once, survives crashes, and is never presented complete unless it is.

1. Fast path: a completion record for the same resolved commit and filters, and every file there with its
   recorded size (stat only) -> exit 0. With the Hub unreachable, a record for the same revision is trusted,
   so vLLM can start while the Hub is down.
2. Otherwise take the directory's lock (others wait, saying who holds it), look again (the holder may have
   just finished), list the files and check every name, check free space and reserve it before writing a
   byte, fetch what is missing in parallel, and write the record last.

Nothing below --local-dir is reached through a symbolic link (SafeDir), and every failure is one line with
its own exit code (errors.py).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llmpack.downloader import CONNECTIONS, PART_SIZE, space
from llmpack.downloader.connection import Pool
from llmpack.downloader.errors import NetworkError, NoSpaceError, UsageError, from_os_error, is_full
from llmpack.downloader.hub import Hub, is_commit, request_headers
from llmpack.downloader.lock import DirectoryLock, Holdable, Owner
from llmpack.downloader.names import endpoint_problem, repo_id_problem
from llmpack.downloader.plan import (
    Plan,
    RemoteFile,
    forget_record,
    read_record,
    select,
    stat_complete,
    write_record,
)
from llmpack.downloader.present import default_threads, survey, verify
from llmpack.downloader.progress import Progress
from llmpack.downloader.safedir import SafeDir
from llmpack.downloader.schedule import fetch_all
from llmpack.downloader.transfer import Cancelled, Job, Source
from llmpack.quantity import format_bytes


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class Request:
    repo_id: str
    local_dir: Path
    revision: str = "main"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    verify: bool = False
    connections: int = CONNECTIONS  # at once, over all files
    part_size: int = PART_SIZE      # files larger than this are fetched in parts of it; 0: one stream each
    verify_threads: int = field(default_factory=default_threads)  # files already there hashed at once
    progress_every: float = field(default_factory=lambda: _env_float("LLMPACK_PROGRESS_SECONDS", 5))
    stale_after: float = field(default_factory=lambda: _env_float("LLMPACK_LOCK_STALE_SECONDS", 30))
    # Read as huggingface_hub reads it; its constants module raises on some malformed values at import.
    endpoint: str = field(default_factory=lambda: os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/"))
    preallocate: bool = field(default_factory=lambda: os.environ.get("LLMPACK_PREALLOCATE", "1") not in ("0", "false"))


def say(event: dict[str, object]) -> None:
    """One JSON object per line on stderr; the only other line a run may print is its error."""
    sys.stderr.write(json.dumps(event) + "\n")
    sys.stderr.flush()


def _complete(request: Request, root: SafeDir, commit_of: Callable[[], str]) -> str | None:
    """The commit the directory is complete for, when it is (the fast path); None otherwise."""
    record = read_record(root)
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
    return commit if commit == record.commit and stat_complete(root, record) else None


def _preflight(request: Request, root: SafeDir, todo: Sequence[RemoteFile], plan: Plan) -> None:
    """Refuse before the first byte when the volume cannot hold what is missing, then reserve it, so a
    second downloader into the same volume sees it taken (space.py)."""
    needed, free = space.still_needed(root, todo), root.free_bytes()
    ask = format_bytes(int(plan.total_bytes * 1.2))
    advice = (f"the model takes {format_bytes(plan.total_bytes)}, so ask for a volume of at least {ask} "
              "(spec.model.storage.size)")
    if needed > free:
        raise NoSpaceError(f"not enough space in {request.local_dir}: {format_bytes(needed)} to fetch, "
                           f"{format_bytes(free)} free; {advice}")
    if not request.preallocate:
        return
    try:
        space.reserve(root, todo)
    except OSError as exc:
        if not is_full(exc):
            raise
        raise NoSpaceError(f"not enough space in {request.local_dir}: {format_bytes(needed)} to fetch, but other "
                           f"downloads into this volume have reserved it ({format_bytes(root.free_bytes())} free "
                           f"now); {advice}") from None


def _publish(lock: Holdable, request: Request, plan: Plan, progress: Progress) -> None:
    """Have the Lease carry this progress; repo and revision say which spec the commit answers (the operator
    shows it as status.resolvedRevision), model_bytes the model's size while the bytes are those checked."""
    lock.progress = lambda: {**progress.snapshot(), "model_bytes": plan.total_bytes, "holder": lock.holder,
                             "commit": plan.commit, "repo": request.repo_id, "revision": request.revision}


def _still_missing(request: Request, root: SafeDir, plan: Plan, lock: Holdable,
                   recorded: Sequence[RemoteFile]) -> list[RemoteFile]:
    """The files to fetch: those not in place with their size, and those whose bytes do not hash to the Hub's
    hash (present.py). The check is a phase of its own, `verifying`, with progress on the Lease."""
    present = survey(root, plan.files, recorded)
    if not present.check:
        return list(present.fetch)
    progress = Progress(sum(f.size for f in present.check), len(present.check), interval=request.progress_every,
                        phase="verifying")
    _publish(lock, request, plan, progress)
    progress.start()
    try:
        _, bad = verify(root, present.check, request.verify_threads, progress.add, progress.file_done, lock.check)
    except BaseException:
        progress.stop("failed")
        raise
    progress.stop("verified", kept_files=len(plan.files) - len(present.fetch) - len(bad),
                  refetch=[f.path for f in bad][:20], missing=len(present.fetch))
    again = {*present.fetch, *bad}
    return [f for f in plan.files if f in again]


def _fetch_all(request: Request, root: SafeDir, pool: Pool, headers: dict[str, str], plan: Plan,
               lock: Holdable, recorded: Sequence[RemoteFile] = ()) -> None:
    todo = _still_missing(request, root, plan, lock, recorded)
    done_bytes = plan.total_bytes - sum(f.size for f in todo)
    lock.check()
    _preflight(request, root, todo, plan)
    progress = Progress(plan.total_bytes, len(plan.files), interval=request.progress_every)
    progress.bytes_done = progress.kept = done_bytes
    progress.files_done = len(plan.files) - len(todo)
    _publish(lock, request, plan, progress)
    stop = threading.Event()  # set when one file fails: the others stop at their next chunk

    def guard() -> None:
        if stop.is_set():
            raise Cancelled
        lock.check()

    def pause(seconds: float) -> None:
        if stop.wait(seconds):
            raise Cancelled

    job = Job(pool, Source(request.endpoint, request.repo_id, plan.commit, headers), root,
              progress.add, guard, pause, reserve=request.preallocate, part_size=request.part_size)
    progress.start()
    try:
        fetch_all(job, todo, request.connections, progress.file_done, stop.set)
        lock.check()
        write_record(root, plan)
    except NoSpaceError as exc:
        progress.stop("failed")
        raise NoSpaceError(f"{exc}; the model takes {format_bytes(plan.total_bytes)}") from None
    except BaseException:
        progress.stop("failed")
        raise
    progress.stop("complete")


def _lock(request: Request, root: SafeDir) -> Holdable:
    """The Lease the operator named (exactly one downloader across nodes), else a lock in the directory."""
    name = os.environ.get("LLMPACK_LEASE_NAME")
    if not name:
        return DirectoryLock(root, stale_after=request.stale_after)
    # Imported here: the Kubernetes client costs a tenth of a second the fast path should not pay.
    from lightkube import Client, KubeConfig

    from llmpack.downloader.lease import LeaseLock

    try:
        client = Client(KubeConfig.from_env(), field_manager="llmpack-downloader")
    except Exception as exc:  # no in-cluster account, no kubeconfig: lightkube's errors vary
        raise NetworkError(f"LLMPACK_LEASE_NAME is set but there is no Kubernetes API to hold the Lease on "
                           f"({exc}); run in the model's pod, or unset it to lock the directory instead") from None
    return LeaseLock(client, name, os.environ.get("POD_NAMESPACE") or client.namespace,
                     duration=int(_env_float("LLMPACK_LEASE_SECONDS", 15)),
                     renew_every=_env_float("LLMPACK_LEASE_RENEW_SECONDS", 5))


def _download(request: Request, root: SafeDir, pool: Pool, started: float) -> None:
    headers = request_headers()
    hub = Hub(pool, request.endpoint, headers, request.repo_id)

    @functools.cache
    def commit_of() -> str:
        """The revision's commit, asked of the Hub once per run (errors are not cached: asked again)."""
        return request.revision if is_commit(request.revision) else hub.resolve(request.revision)

    if (commit := _complete(request, root, commit_of)) is not None:
        say({"phase": "complete", "fast_path": True, "commit": commit,
             "seconds": round(time.monotonic() - started, 3)})
        return
    last_said = [0.0]

    def waiting(owner: Owner | None) -> None:
        if time.monotonic() - last_said[0] >= request.progress_every:
            last_said[0] = time.monotonic()
            say({"phase": "waiting", "holder": owner.holder if owner else None,
                 "heartbeat_age": round(owner.age(), 1) if owner else None})

    lock = _lock(request, root)
    with lock.held(waiting):
        if (commit := _complete(request, root, commit_of)) is not None:
            say({"phase": "complete", "fast_path": True, "commit": commit, "waited": True,
                 "seconds": round(time.monotonic() - started, 3)})
            return
        commit = commit_of()
        files = select(hub.list_files(commit), request.include, request.exclude)  # every name checked
        plan = Plan(request.repo_id, request.revision, commit, files, request.include, request.exclude)
        say({"phase": "planned", "commit": plan.commit, "files": len(plan.files), "bytes": plan.total_bytes,
             "holder": lock.holder})
        lock.check()
        earlier = read_record(root)  # another commit's or filters': the files it lists were verified
        recorded = earlier.remote_files() if earlier is not None and not request.verify else []
        forget_record(root)
        _fetch_all(request, root, pool, headers, plan, lock, recorded)


def download(request: Request) -> None:
    """Fill `request.local_dir` with the verified files of the revision; raises DownloadError subclasses."""
    started = time.monotonic()
    if (problem := repo_id_problem(request.repo_id)) is not None:
        raise UsageError(f"{request.repo_id!r} is not a Hugging Face repo id: it {problem} (e.g. Qwen/Qwen3-8B); "
                         "check spec.model.name")
    if (problem := endpoint_problem(request.endpoint)) is not None:
        raise UsageError(f"HF_ENDPOINT {request.endpoint!r} {problem}, e.g. https://huggingface.co")
    try:
        request.local_dir.mkdir(parents=True, exist_ok=True)  # the path the user chose: links there are theirs
        with SafeDir(request.local_dir) as root, Pool(timeout=_env_float("HF_HUB_DOWNLOAD_TIMEOUT", 10)) as pool:
            _download(request, root, pool, started)
    except OSError as exc:  # what SafeDir and the transfer did not put in context already
        where = exc.filename if isinstance(exc.filename, str) and os.path.isabs(exc.filename) else request.local_dir
        raise from_os_error(exc, where) from None


def run(repo_id: str, local_dir: Path, revision: str | None, include: Sequence[str], exclude: Sequence[str],
        verify: bool, connections: int, part_size: int) -> None:
    download(Request(repo_id, local_dir, revision or "main", tuple(include), tuple(exclude), verify, connections,
                     part_size))
