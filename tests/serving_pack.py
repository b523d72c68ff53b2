"""The LLM Serving Pack's own files, unchanged (Apache-2.0), as the reference folder beside the project holds
them: its example manifests and its chart's values.yaml. Tests apply them exactly as a pack user would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT.parent / "shared" / "reference" / "serving-pack"
EXAMPLES = sorted((PACK / "examples" / "models").glob("*.yaml"))
VALUES = PACK / "values.yaml"

CHART = ROOT / "charts" / "llmpack"
PACK_SPELLING = "Serving Pack spelling of "


def spelling_pairs() -> list[tuple[str, str, str]]:
    """(the pack's key, llmpack's key, JSON type) for every key our chart's schema marks as the pack's spelling
    of one of ours ("Serving Pack spelling of routing.baseDomain.")."""
    pairs = []

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, sub in node.get("properties", {}).items():
            description = str(sub.get("description", ""))
            if description.startswith(PACK_SPELLING):
                ours = description.removeprefix(PACK_SPELLING).split(";")[0].split(" ")[0].rstrip(".")
                pairs.append((f"{prefix}{key}", ours, str(sub["type"])))
            walk(sub, f"{prefix}{key}.")

    walk(json.loads((CHART / "values.schema.json").read_text()), "")
    return pairs
