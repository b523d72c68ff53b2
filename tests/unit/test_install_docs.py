"""docs/install.md's values table is generated from the chart's values.schema.json and values.yaml; this
test fails when they drift (UPDATE_DOCS=1 rewrites the table between its markers)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from llmpack.config import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "llmpack"
DOC = ROOT / "docs" / "install.md"
BEGIN, END = "<!-- values:begin (generated from values.schema.json) -->", "<!-- values:end -->"


PACK_BEGIN = "<!-- pack-values:begin (generated from values.schema.json) -->"
PACK_KEY = "serving-pack"  # the schema's $comment on a key of the Serving Pack's values.yaml


def _rows(schema: dict[str, Any], defaults: Any, prefix: str = "") -> list[tuple[str, str, str]]:
    """Our keys: every leaf with its default; the pack's spelling is left to _pack_rows."""
    rows = []
    for key, sub in schema.get("properties", {}).items():
        path = f"{prefix}{key}"
        value = defaults.get(key) if isinstance(defaults, dict) else None
        if sub.get("$comment") == PACK_KEY:
            continue
        if sub.get("type") == "object" and "properties" in sub:
            rows += _rows(sub, value, f"{path}.")
        else:
            shown = json.dumps(value) if not isinstance(value, str) else (f'"{value}"' if value else '""')
            rows.append((path, shown, sub.get("description", "")))
    return rows


def _pack_rows(schema: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """The pack's keys: a leaf each, or a whole subtree (keyManager.*) when the subtree is the pack's."""
    rows = []
    for key, sub in schema.get("properties", {}).items():
        path = f"{prefix}{key}"
        if sub.get("$comment") == PACK_KEY:
            rows.append((f"{path}.*" if "properties" in sub else path, sub.get("description", "")))
        elif "properties" in sub:
            rows += _pack_rows(sub, f"{path}.")
    return rows


def _schema() -> dict[str, Any]:
    return dict(json.loads((CHART / "values.schema.json").read_text()))


def values_table() -> str:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    lines = ["| value | default | what it does |", "|---|---|---|"]
    lines += [f"| `{path}` | `{default}` | {text} |" for path, default, text in _rows(_schema(), defaults)]
    return "\n".join(lines) + "\n"


def pack_values_table() -> str:
    lines = ["| the pack's key | what llmpack does with it |", "|---|---|"]
    lines += [f"| `{path}` | {text} |" for path, text in _pack_rows(_schema())]
    return "\n".join(lines) + "\n"


def _check(text: str, begin: str, table: str) -> str:
    if os.environ.get("UPDATE_DOCS"):
        text = re.sub(re.escape(begin) + ".*?" + re.escape(END), f"{begin}\n{table}{END}", text, flags=re.S)
    assert f"{begin}\n{table}{END}" in text, "stale table: UPDATE_DOCS=1 pytest tests/unit/test_install_docs.py"
    return text


def test_install_docs_list_every_value_with_its_default() -> None:
    text = _check(DOC.read_text(), BEGIN, values_table())
    if os.environ.get("UPDATE_DOCS"):
        DOC.write_text(text)


def test_install_docs_list_every_key_of_the_serving_packs_values_and_what_it_does() -> None:
    text = _check(DOC.read_text(), PACK_BEGIN, pack_values_table())
    if os.environ.get("UPDATE_DOCS"):
        DOC.write_text(text)


def test_operations_docs_list_every_setting_and_its_environment_variable() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    missing = [f"{key} / {env}" for key, env, _ in SETTINGS if f"| `{key}` | `{env}`" not in text]
    assert missing == [], "docs/operations.md, Settings: add a row for each"
