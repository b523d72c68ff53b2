"""Where a pinned Go module lies in the module cache (downloaded from the proxy when missing): the test
cluster reads kwok's stages and third-party CRDs from there instead of copying them into this repository."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def module_dir(module: str) -> Path:
    """`module` is path@version, e.g. sigs.k8s.io/kwok@v0.8.0."""
    out = subprocess.run(["go", "mod", "download", "-json", module], capture_output=True, text=True, check=True,
                         timeout=600)
    return Path(json.loads(out.stdout)["Dir"])
