"""Which names we accept from outside: a Hub repo id, and the file names a repo lists. A repo is input anyone
can publish, and the downloader writes what it lists into a volume other pods share, so every name must be a
plain relative path below --local-dir before a byte is written. Pure functions, no I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

STATE_DIR = ".llmpack"  # our own state inside --local-dir; no repo file may land there
MAX_COMPONENT_BYTES = 250  # NAME_MAX is 255, and the partial file adds ".part"
MAX_PATH_BYTES = 1024
MAX_REPO_PART = 96  # the Hub's limit on a namespace or a repo name

_REPO_PART = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")


def repo_id_problem(repo_id: str) -> str | None:
    """Why `repo_id` is not a Hub model id (`name` or `namespace/name`), or None when it is one."""
    if not repo_id:
        return "is empty"
    parts = repo_id.split("/")
    if len(parts) > 2:
        return "has more than one '/'"
    for part in parts:
        if not _REPO_PART.match(part):
            return "may hold only letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
        if ".." in part or "--" in part:
            return "may not contain '..' or '--'"
        if len(part) > MAX_REPO_PART:
            return f"has a part longer than {MAX_REPO_PART} characters"
    return None


def endpoint_problem(endpoint: str) -> str | None:
    """Why HF_ENDPOINT is not a base URL we can call, or None."""
    try:
        url = urlsplit(endpoint)
        url.port  # noqa: B018  # parses the port: raises on a bad one
    except ValueError:
        return "is not a URL"
    if url.scheme not in ("http", "https") or not url.hostname:
        return "is not an http(s) URL with a host"
    return None


def path_problem(name: object) -> str | None:
    """Why a listed file name may not be written below --local-dir, or None when it may."""
    if not isinstance(name, str):
        return "is not a string"
    if not name:
        return "is empty"
    if "\0" in name:
        return "contains a NUL byte"
    if "\\" in name:
        return "contains a backslash"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "contains a control character"
    if name.startswith("/"):
        return "is an absolute path"
    parts = name.split("/")
    if ".." in parts:
        return "names a parent directory ('..')"
    if "" in parts or "." in parts:
        return "is not a normalised path (an empty or '.' segment)"
    if parts[0] == STATE_DIR:
        return f"lies inside {STATE_DIR}/, llmpack's own state"
    try:
        encoded = [p.encode() for p in parts]
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if any(len(p) > MAX_COMPONENT_BYTES for p in encoded):
        return f"has a segment longer than {MAX_COMPONENT_BYTES} bytes"
    if len(name.encode()) > MAX_PATH_BYTES:
        return f"is longer than {MAX_PATH_BYTES} bytes"
    return None


def listing_problem(names: Iterable[str]) -> tuple[str, str] | None:
    """The first name of a listing we must refuse and why; None when every name is safe and the names
    fit together (no duplicate, no name that is both a file and another file's directory)."""
    seen: set[str] = set()
    dirs: set[str] = set()
    for name in names:
        if (problem := path_problem(name)) is not None:
            return name, problem
        if name in seen:
            return name, "is listed twice"
        if name in dirs:
            return name, "is both a file and a directory of another listed file"
        seen.add(name)
        parts = name.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if prefix in seen:
                return prefix, "is both a file and a directory of another listed file"
            dirs.add(prefix)
    return None


def shown(name: str, limit: int = 160) -> str:
    """A name as an error line shows it: quoted, escaped (a NUL or a newline stays visible), cut when long."""
    return repr(name) if len(name) <= limit else f"{name[:limit]!r}..."
