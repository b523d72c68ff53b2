"""Reading LLMModel manifests from files, with errors a person can act on in one line."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from llmpack.api import API_VERSION, KIND, LLMModel

# Cross-field validators start their message with the field they blame, relative to where they run.
_RELATIVE_FIELD = re.compile(r"^([A-Za-z][\w.]*): (.*)$", re.S)


MAX_DEPTH = 64  # levels of nesting in a document; Kubernetes objects (affinity) take about 15

class ManifestError(ValueError):
    """A manifest that cannot be used; str() is one line naming the file, the object and the field."""


@dataclass(frozen=True)
class Document:
    source: str
    index: int
    body: dict[str, Any]

    @property
    def label(self) -> str:
        meta = self.body.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        return f"{self.source}: {self.body.get('kind', 'document')} {name or f'#{self.index + 1}'}"


def _field(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def locate(error: ErrorDetails) -> tuple[str, str]:
    """One validation error as (field, what is wrong); the field is "" when the whole object is wrong."""
    where = _field(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field; check its spelling against `kubectl explain llmmodel.spec`"
    elif error["type"] == "missing":
        message = "required field is missing"
    if match := _RELATIVE_FIELD.match(message):
        where = f"{where}.{match.group(1)}" if where else match.group(1)
        message = match.group(2)
    return where, message


def describe(error: ErrorDetails) -> str:
    """One validation error as `field: what is wrong`."""
    where, message = locate(error)
    return f"{where}: {message}" if where else message


def parse_model(doc: Document) -> LLMModel:
    if doc.body.get("apiVersion") != API_VERSION:
        raise ManifestError(f"{doc.label}: apiVersion: must be {API_VERSION}, got {doc.body.get('apiVersion')!r}")
    try:
        return LLMModel.from_body(doc.body)
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ManifestError(f"{doc.label}: {describe(errors[0])}{more}") from None


def read_documents(path: Path) -> Iterator[Document]:
    source = str(path)
    try:
        text = sys.stdin.read() if source == "-" else path.read_text()
    except OSError as exc:
        raise ManifestError(f"{source}: cannot read: {exc.strerror}") from None
    try:
        bodies = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ManifestError(f"{source}: not valid YAML{line}: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise ManifestError(f"{source}: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # PyYAML's int() of a number of more than 4,300 digits
        raise ManifestError(f"{source}: a number in it cannot be read: {str(exc).split(';')[0]}") from None
    for index, body in enumerate(bodies):
        if body is None:
            continue
        if not isinstance(body, dict):
            raise ManifestError(f"{source}: document #{index + 1} is not a mapping")
        if _deeper_than(body, MAX_DEPTH):
            raise ManifestError(f"{source}: document #{index + 1} is nested deeper than {MAX_DEPTH} levels")
        yield Document(source, index, body)


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether mappings and lists nest more than `limit` levels (level by level: no recursion to overflow)."""
    level = [value]
    for _ in range(limit):
        level = [child for node in level for child in (node.values() if isinstance(node, dict) else node)
                 if isinstance(child, dict | list)]
        if not level:
            return False
    return True


def load_models(paths: list[Path]) -> list[LLMModel]:
    """Every LLMModel in the files, in order; other kinds are skipped. Raises ManifestError."""
    models = []
    for path in paths:
        for doc in read_documents(path):
            if doc.body.get("kind") == KIND:
                models.append(parse_model(doc))
    return models
