"""The LLM Serving Pack's own files, unchanged (Apache-2.0), as the reference folder beside the project holds
them: its example manifests and its chart's values.yaml. Tests apply them exactly as a pack user would."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT.parent / "shared" / "reference" / "serving-pack"
EXAMPLES = sorted((PACK / "examples" / "models").glob("*.yaml"))
VALUES = PACK / "values.yaml"
