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


def _rows(schema: dict[str, Any], defaults: Any, prefix: str = "") -> list[tuple[str, str, str]]:
    rows = []
    for key, sub in schema.get("properties", {}).items():
        path = f"{prefix}{key}"
        value = defaults.get(key) if isinstance(defaults, dict) else None
        if sub.get("type") == "object" and "properties" in sub:
            rows += _rows(sub, value, f"{path}.")
        else:
            shown = json.dumps(value) if not isinstance(value, str) else (f'"{value}"' if value else '""')
            rows.append((path, shown, sub.get("description", "")))
    return rows


def values_table() -> str:
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    lines = ["| value | default | what it does |", "|---|---|---|"]
    lines += [f"| `{path}` | `{default}` | {text} |" for path, default, text in _rows(schema, defaults)]
    return "\n".join(lines) + "\n"


def test_install_docs_list_every_value_with_its_default() -> None:
    text = DOC.read_text()
    table = values_table()
    if os.environ.get("UPDATE_DOCS"):
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), f"{BEGIN}\n{table}{END}", text, flags=re.S)
        DOC.write_text(text)
    assert f"{BEGIN}\n{table}{END}" in text, "stale table: UPDATE_DOCS=1 pytest tests/unit/test_install_docs.py"


def test_operations_docs_list_every_setting_and_its_environment_variable() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    missing = [f"{key} / {env}" for key, env, _ in SETTINGS if f"| `{key}` | `{env}`" not in text]
    assert missing == [], "docs/operations.md, Settings: add a row for each"
