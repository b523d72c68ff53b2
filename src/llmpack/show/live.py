"""Fetch the models (list, then watch with --watch) and draw them: in place on a terminal, else a plain line
per model and, with --watch, a new line whenever a model's line changes."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

from llmpack.show.lines import Row, board, plain, row

HIDE, SHOW = "\x1b[?25l", "\x1b[?25h"


class Problem(Exception):
    """Why the models cannot be read: one line for the user."""


def _bodies(client: Any, namespace: str | None) -> tuple[dict[tuple[str, str], dict[str, Any]], str | None]:
    from llmpack.operator.kube import LLMModelResource

    listed = client.list(LLMModelResource, namespace=namespace or "*")
    bodies = {}
    for obj in listed:
        body = obj.to_dict()
        bodies[body["metadata"].get("namespace", ""), body["metadata"]["name"]] = body
    return bodies, listed.resourceVersion


def _changes(client: Any, namespace: str | None) -> Iterator[dict[tuple[str, str], dict[str, Any]]]:
    """The models now, then again after every change; a broken watch lists again."""
    from llmpack.operator.kube import LLMModelResource

    while True:
        bodies, version = _bodies(client, namespace)
        yield bodies
        try:
            for type_, obj in client.watch(LLMModelResource, namespace=namespace or "*", resource_version=version):
                body = obj.to_dict()
                key = (body["metadata"].get("namespace", ""), body["metadata"]["name"])
                if type_ == "DELETED":
                    bodies.pop(key, None)
                else:
                    bodies[key] = body
                yield bodies
        except Exception as exc:  # the watch expired (410) or the connection dropped: list again
            if _refusal(exc):
                raise
            time.sleep(1)


def _refusal(exc: Exception) -> str | None:
    from lightkube.core.exceptions import ApiError

    if not isinstance(exc, ApiError):
        return None
    if exc.status.code in (401, 403):
        return f"not allowed to list and watch LLMModels: {exc.status.message}"
    if exc.status.code == 404:
        return "this cluster has no LLMModel CRD (llmmodels.llm.nebari.dev): install llmpack first"
    return None


class Screen:
    """Redraws its lines in place: back to the first, then clear below (lines never wrap: board fits them)."""

    def __init__(self, out: IO[str]) -> None:
        self.out, self.drawn = out, 0

    def draw(self, lines: list[str]) -> None:
        back = f"\x1b[{self.drawn}F" if self.drawn else ""
        self.out.write(back + "\x1b[J" + "".join(f"{line}\n" for line in lines))
        self.out.flush()
        self.drawn = len(lines)


def _rows(bodies: dict[tuple[str, str], dict[str, Any]]) -> list[Row]:
    return [row(bodies[key]) for key in sorted(bodies)]


def show(client: Any, namespace: str | None, *, watch: bool, out: IO[str] = sys.stdout) -> int:
    """`namespace` None: every namespace."""
    terminal = out.isatty()
    where = f"namespace {namespace}" if namespace else "any namespace"
    screen = Screen(out)
    printed: dict[str, str] = {}
    try:
        if terminal and watch:
            out.write(HIDE)
        for bodies in _changes(client, namespace):
            rows = _rows(bodies)
            if terminal:
                width = shutil.get_terminal_size().columns
                screen.draw(board(rows, width) if rows else [f"no LLMModels in {where}"])
            else:
                for r in rows:
                    line = plain(r)
                    if printed.get(r.where) != line:
                        out.write(line + "\n")
                        printed[r.where] = line
                if not rows and not watch:
                    out.write(f"no LLMModels in {where}\n")
                out.flush()
            if not watch:
                return 0
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        if (message := _refusal(exc)) is not None:
            raise Problem(message) from None
        raise
    finally:
        if terminal and watch:
            out.write(SHOW)
            out.flush()
    return 0
