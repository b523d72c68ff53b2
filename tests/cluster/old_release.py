"""Earlier releases of llmpack, from git: the chart (and source) of the last release whose webhook denied and
warned with failurePolicy Fail, for the webhook upgrade test and the admission benchmark's old side; and of a
release whose CRDs differ from today's, for the CRD upgrade test."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# main before issue 16: every warning and most denials in the operator's webhook, failurePolicy Fail.
FAILING_WEBHOOK_COMMIT = "ce77a1c9bd219edb662bca366f8b08b6cfc34ff9"
# main before PassthroughModel (#17): no passthroughmodels CRD, and an llmmodels CRD without
# spec.model.imageVolume, status.loading, status.resolvedRevision, status.modelId and status.modelIdClaimedAt.
PREVIOUS_CRD_COMMIT = "605368bb0f13a512b356d2c8676207c51fc314be"


class MissingHistory(RuntimeError):
    """The clone does not hold the commit (a shallow clone): one line saying how to fetch it."""


def checkout(path: str, into: Path, commit: str = FAILING_WEBHOOK_COMMIT) -> Path:
    """`path` (a directory of the repository) as it was at `commit`, under `into`."""
    into.mkdir(parents=True, exist_ok=True)
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", commit, path], capture_output=True, check=False)
    if tar.returncode != 0:
        raise MissingHistory(f"this clone lacks commit {commit[:12]} of main ({tar.stderr.decode().strip()}): "
                             "fetch the whole history (git fetch --unshallow) to run the upgrade tests")
    subprocess.run(["tar", "-x", "-C", str(into)], input=tar.stdout, check=True)
    return into / path
