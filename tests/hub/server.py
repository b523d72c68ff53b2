"""A Hub-compatible HTTP server on 127.0.0.1 for tests: synthetic repos, revisions, a gated repo, Range
requests (`bytes=a-b` and `bytes=a-` on any request), counted bytes per file, and injectable faults: a rate
per connection (as a CDN edge limits each one), stalled bodies, connections dropped once or after every N
bytes, corrupt bytes, a server that ignores Range, empty 200/206 bodies, 429/5xx (with any Retry-After, sane
or not) on file GETs and on API calls, and hostile repos whose listing names `../x`, absolute paths, NUL or
backslash.

With faults.cdn, file GETs are redirected to /cdn/ on another origin (localhost, not 127.0.0.1), as the Hub
sends them to its CDN. A request may name the whole URL (absolute form), as one through an HTTP proxy does.

It answers what ../shared/reference/hf-hub-contract.md lists, so the real huggingface_hub client (and the
`hf download` CLI) work against it; that is the proof it speaks the protocol.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")
PAGE = 50


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def is_lfs(path: str) -> bool:
    return path.endswith(LFS_SUFFIXES)


@dataclass
class Repo:
    repo_id: str
    commits: dict[str, dict[str, bytes]]        # commit -> path -> bytes
    refs: dict[str, str]                         # branch or tag -> commit
    token: str | None = None                     # gated: only this token may read

    def commit_of(self, revision: str) -> str | None:
        return revision if revision in self.commits else self.refs.get(revision)


def commit_id(seed: str) -> str:
    return hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()


def synthetic_repo(repo_id: str, shards: int = 2, shard_size: int = 4 << 20, token: str | None = None,
                   revisions: int = 1) -> Repo:
    """A model-like repo: config.json, tokenizer.json and `shards` LFS safetensors of deterministic bytes;
    revision i (branch "main" is the last; tags "v1", "v2", ...) changes the first shard."""
    commits, refs = {}, {}
    for r in range(revisions):
        files = {"config.json": json.dumps({"model_type": "llama", "revision": r}).encode(),
                 "tokenizer.json": json.dumps({"vocab": list(range(200))}).encode()}
        for s in range(shards):
            block = hashlib.sha256(f"{repo_id}:{s}:{r if s == 0 else 0}".encode()).digest()
            files[f"model-{s + 1:05d}-of-{shards:05d}.safetensors"] = (block * (shard_size // 32 + 1))[:shard_size]
        commit = commit_id(f"{repo_id}@{r}")
        commits[commit] = files
        refs[f"v{r + 1}"] = commit
        refs["main"] = commit
    return Repo(repo_id, commits, refs, token)


def hostile_repo(repo_id: str, *names: str) -> Repo:
    """A repo that lists, beside an honest config.json, files with the given names (`../x`, `/etc/x`, ...):
    what anyone can publish, and what a downloader must refuse before writing anything."""
    files = {"config.json": b"{}", **{name: b"owned\n" for name in names}}
    commit = commit_id(f"{repo_id}@hostile")
    return Repo(repo_id, {commit: files}, {"main": commit})


# A queue of (status, Retry-After or None) answers to give before the real one.
Answers = list[tuple[int, str | None]]


@dataclass
class Faults:
    rate: float | None = None                              # bytes per second per connection for file bodies
    ignore_range: bool = False                             # answer every file GET 200 with the whole body
    drop_after: dict[str, int] = field(default_factory=dict)  # path -> offset to cut the connection at, once
    corrupt: Counter[str] = field(default_factory=Counter)     # path -> how many more responses that carry
                                                               # the file's middle byte to corrupt (flip it)
    too_many: int = 0                                          # answer this many file GETs with 429 first
    stall: dict[str, tuple[int, float]] = field(default_factory=dict)  # path -> (offset, seconds), once
    drop_every: int | None = None                              # cut every file response after this many bytes
    empty_bodies: int = 0                                      # answer this many file GETs 200/206 with no body
    file_errors: Answers = field(default_factory=list)         # answer the next file GETs with these first
    api_errors: Answers = field(default_factory=list)          # answer the next revision/tree calls with these
    next_page: str | None = None                               # a Link rel="next" on every listing page
    cdn: bool = False                                          # send file GETs on to /cdn/ on another origin
    expired: int = 0                                           # answer this many /cdn/ GETs 403, as a CDN
                                                               # does once a signed URL has expired


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many connections opened at once (ranged parts) must not wait out a SYN retry

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client killed mid-request (the chaos bench does it on purpose) is no error of the server's."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class HubServer:
    def __init__(self, repos: list[Repo]) -> None:
        self.repos = {r.repo_id: r for r in repos}
        self.faults = Faults()
        self.served: Counter[str] = Counter()   # "repo/path" -> body bytes written to sockets
        self.requests: Counter[str] = Counter()
        self.ranges: list[tuple[str, str | None]] = []     # ("repo/path", its Range header) per file GET
        self.at_once: Counter[str] = Counter()              # "repo/path" -> most bodies sent at the same time
        self.cdn_tokens: list[str | None] = []              # the Authorization each /cdn/ GET carried
        self._sending: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[bytes, str, str]] = {}  # id(bytes) -> (bytes, git sha1, sha256)
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def count(self, key: str, n: int) -> None:
        with self._lock:
            self.served[key] += n

    def sending(self, key: str) -> int:
        """Bodies of "repo/path" being sent right now (a killed client's are done once this is 0)."""
        with self._lock:
            return self._sending[key]

    def hashes(self, data: bytes) -> tuple[str, str]:
        """A file's git blob sha1 and sha256, computed once (a listing and every GET need them)."""
        with self._lock:
            known = self._entries.get(id(data))
        if known is None or known[0] is not data:
            known = (data, git_sha1(data), hashlib.sha256(data).hexdigest())
            with self._lock:
                self._entries[id(data)] = known  # holds `data`, so its id is not reused meanwhile
        return known[1], known[2]


def _handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        # -- replies ---------------------------------------------------------------------------------------
        def _json(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client was killed
                    self.wfile.write(data)

        def _error(self, status: int, code: str, message: str) -> None:
            self._json({"error": message}, status, {"X-Error-Code": code, "X-Error-Message": message})

        def _injected(self, answers: Answers) -> bool:
            """Give the next queued error answer, if any."""
            with hub._lock:
                if not answers:
                    return False
                status, retry_after = answers.pop(0)
            self._json({"error": "injected"}, status, {"Retry-After": retry_after} if retry_after is not None else {})
            return True

        def _repo(self, repo_id: str) -> Repo | None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", f"Repository Not Found for url: {self.path}.")
                return None
            if repo.token and self.headers.get("Authorization") != f"Bearer {repo.token}":
                self._error(401, "GatedRepo", f"Access to model {repo_id} is restricted.")
                return None
            return repo

        def _commit(self, repo: Repo, revision: str) -> str | None:
            commit = repo.commit_of(unquote(revision))
            if commit is None:
                self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return commit

        def _entry(self, files: dict[str, bytes], path: str) -> dict[str, Any]:
            data = files[path]
            sha1, sha256 = hub.hashes(data)
            entry: dict[str, Any] = {"type": "file", "path": path, "size": len(data), "oid": sha1}
            if is_lfs(path):
                entry["lfs"] = {"oid": sha256, "size": len(data), "pointerSize": 134}
            return entry

        # -- routes ----------------------------------------------------------------------------------------
        def do_GET(self) -> None:
            self._route()

        def do_HEAD(self) -> None:
            self._route()

        def do_POST(self) -> None:
            self._route()

        def _route(self) -> None:
            url = urlsplit(self.path)
            parts = [p for p in url.path.split("/") if p]
            query = parse_qs(url.query)
            hub.requests[f"{self.command} {url.path}"] += 1
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                if self._injected(hub.faults.api_errors):
                    return
                repo = self._repo(f"{parts[2]}/{parts[3]}")
                if repo is None:
                    return
                rest = parts[4:]
                if not rest or rest[0] == "revision":
                    self._info(repo, rest[1] if len(rest) > 1 else "main")
                elif rest[0] == "tree":
                    self._tree(repo, rest[1], "/".join(rest[2:]), query)
                elif rest[0] == "paths-info":
                    self._paths_info(repo, rest[1])
                else:
                    self._error(404, "EntryNotFound", "no such API")
            elif len(parts) >= 5 and parts[2] == "resolve":
                repo = self._repo(f"{parts[0]}/{parts[1]}")
                if repo is not None:
                    self._resolve(repo, parts[3], unquote("/".join(parts[4:])))
            elif len(parts) >= 5 and parts[0] == "cdn" and f"{parts[1]}/{parts[2]}" in hub.repos:
                with hub._lock:  # the signed URL is the credential there: no token is needed, or wanted
                    hub.cdn_tokens.append(self.headers.get("Authorization"))
                    expired = hub.faults.expired > 0
                    hub.faults.expired -= expired
                if expired:
                    self._error(403, "Expired", "Request has expired")
                else:
                    self._resolve(hub.repos[f"{parts[1]}/{parts[2]}"], parts[3], unquote("/".join(parts[4:])),
                                  cdn=True)
            else:
                self._error(404, "EntryNotFound", "not found")

        def _info(self, repo: Repo, revision: str) -> None:
            if (commit := self._commit(repo, revision)) is None:
                return
            files = repo.commits[commit]
            self._json({"id": repo.repo_id, "modelId": repo.repo_id, "sha": commit, "private": False,
                        "gated": "auto" if repo.token else False, "disabled": False, "downloads": 0, "likes": 0,
                        "tags": [], "siblings": [{"rfilename": p} for p in sorted(files)]})

        def _tree(self, repo: Repo, revision: str, prefix: str, query: dict[str, list[str]]) -> None:
            if (commit := self._commit(repo, revision)) is None:
                return
            files = repo.commits[commit]
            entries = [self._entry(files, p) for p in sorted(files) if p.startswith(prefix)]
            start = int(query.get("cursor", ["0"])[0])
            page, headers = entries[start:start + PAGE], {}
            if start + PAGE < len(entries):
                headers["Link"] = f'<{hub.url}{urlsplit(self.path).path}?recursive=true&expand=false' \
                                  f'&cursor={start + PAGE}>; rel="next"'
            if hub.faults.next_page is not None:  # pages that never end, or that lead to another host
                headers["Link"] = f'<{hub.faults.next_page}>; rel="next"'
            self._json(page, headers=headers)

        def _paths_info(self, repo: Repo, revision: str) -> None:
            if (commit := self._commit(repo, revision)) is None:
                return
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            try:
                paths = json.loads(raw).get("paths", [])
            except ValueError:
                paths = parse_qs(raw).get("paths", [])
            files = repo.commits[commit]
            self._json([self._entry(files, p) for p in paths if p in files])

        def _resolve(self, repo: Repo, revision: str, path: str, cdn: bool = False) -> None:
            if (commit := self._commit(repo, revision)) is None:
                return
            files = repo.commits[commit]
            if hub.faults.cdn and not cdn and path in files:  # "localhost": another origin than 127.0.0.1
                port = hub._server.server_address[1]
                self.send_response(302)
                self.send_header("Location", f"http://localhost:{port}/cdn/{repo.repo_id}/{commit}/{quote(path)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if path not in files:
                self._error(404, "EntryNotFound", f"{path} does not exist on {revision}")
                return
            if self.command == "GET" and hub.faults.too_many > 0:
                hub.faults.too_many -= 1
                self._json({"error": "slow down"}, 429, {"Retry-After": "1"})
                return
            if self.command == "GET" and self._injected(hub.faults.file_errors):
                return
            data = files[path]
            entry = self._entry(files, path)
            etag = entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]
            if self.command == "GET":
                with hub._lock:
                    hub.ranges.append((f"{repo.repo_id}/{path}", self.headers.get("Range")))
            span = None if hub.faults.ignore_range else _byte_range(self.headers.get("Range", ""), len(data))
            if span is not None and span[0] >= len(data):
                self._json({"error": "range not satisfiable"}, 416, {"Content-Range": f"bytes */{len(data)}"})
                return
            start, end = span or (0, len(data))
            self.send_response(206 if span else 200)
            self.send_header("X-Repo-Commit", commit)
            self.send_header("ETag", f'"{etag}"')
            if "lfs" in entry:
                self.send_header("X-Linked-Etag", f'"{etag}"')
                self.send_header("X-Linked-Size", str(len(data)))
            empty = self.command == "GET" and hub.faults.empty_bodies > 0
            if empty:
                hub.faults.empty_bodies -= 1  # a 200/206 with no body, as a broken proxy sends
            self.send_header("Content-Length", "0" if empty else str(end - start))
            self.send_header("Accept-Ranges", "bytes")
            if span:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
            self.end_headers()
            if self.command == "HEAD" or empty:
                return
            key = f"{repo.repo_id}/{path}"
            with hub._lock:
                hub._sending[key] += 1
                hub.at_once[key] = max(hub.at_once[key], hub._sending[key])
            try:
                self._body(repo, path, data, start, end)
            finally:
                with hub._lock:
                    hub._sending[key] -= 1

        def _body(self, repo: Repo, path: str, data: bytes, start: int, end: int) -> None:
            key, faults = f"{repo.repo_id}/{path}", hub.faults
            middle = len(data) // 2
            view = memoryview(data)
            if faults.corrupt[path] > 0 and start <= middle < end:
                faults.corrupt[path] -= 1
                view = memoryview(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
            cut = faults.drop_after.pop(path, None)
            if faults.drop_every is not None:
                cut = min(cut if cut is not None and cut > start else end, start + faults.drop_every)
            stall_at, stall_for = faults.stall.pop(path, (None, 0.0))
            # When paced, a piece per 5 ms of the rate, at least 64 KiB: an even rate, and a killed client leaves
            # little counted but unread; a test server that wakes up less leaves the CPU to the client.
            piece = min(max(int(faults.rate / 200), 64 << 10), 1 << 20) if faults.rate else 1 << 20
            if faults.rate:  # as a CDN edge paces: little queued unsent, so what is counted is what was sent
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, 128 << 10)
            position, began = start, time.monotonic()
            while position < end:
                stop = min(position + piece, end, cut if cut is not None and cut > position else end)
                try:
                    self.wfile.write(view[position:stop])
                except (BrokenPipeError, ConnectionResetError):
                    return
                hub.count(key, stop - position)
                position = stop
                if stall_at is not None and position >= stall_at:
                    time.sleep(stall_for)  # no bytes at all: the client must notice and reconnect
                    stall_at = None
                    return
                if cut is not None and position >= cut:
                    self.close_connection = True
                    self.connection.shutdown(2)  # drop mid-file, as a proxy or a flaky link would
                    return
                if faults.rate:  # this connection's bytes so far, at the rate: no faster on average
                    time.sleep(max(began + (position - start) / faults.rate - time.monotonic(), 0.0))

    return Handler


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The [start, end) a `Range: bytes=a-b` or `bytes=a-` header asks for (start >= size: unsatisfiable);
    None when there is none we serve (absent, several ranges, a suffix, malformed: the whole body, as HTTP
    allows)."""
    if not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    if not first.isdigit() or not (last == "" or last.isdigit()):
        return None
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if start >= size:
        return start, size
    return (start, end) if end > start else None
