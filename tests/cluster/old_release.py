"""The last release of llmpack whose webhook denied and warned with failurePolicy Fail, from git: its chart for
the upgrade test, its source for the admission benchmark's old side."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# main before issue 16: every warning and most denials in the operator's webhook, failurePolicy Fail.
FAILING_WEBHOOK_COMMIT = "ce77a1c9bd219edb662bca366f8b08b6cfc34ff9"


def checkout(path: str, into: Path) -> Path:
    """`path` (a directory of the repository) as it was at FAILING_WEBHOOK_COMMIT, under `into`."""
    into.mkdir(parents=True, exist_ok=True)
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", FAILING_WEBHOOK_COMMIT, path], capture_output=True,
                         check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=tar.stdout, check=True)
    return into / path
