"""The images build what they say: lint-clean Dockerfiles whose entrypoints are our real commands."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from llmpack.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((ROOT / "images").glob("*/Dockerfile"))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    hadolint = shutil.which("hadolint") or str(Path(__file__).parents[2] / ".venv/bin/hadolint")
    result = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_image_runs_as_non_root_with_a_real_entrypoint(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    assert re.search(r"^USER 65532:65532$", text, re.M)
    final = text.split("\nFROM ")[-1]
    assert "pip install" not in final  # nothing is built in the final stage
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.+)$", text, re.M).group(1))  # type: ignore[union-attr]
    cmd = json.loads(re.search(r"^CMD (.+)$", text, re.M).group(1)) if "\nCMD " in text else []  # type: ignore[union-attr]
    assert entrypoint[0] == "llmpack"  # the console script pyproject.toml installs
    assert "llmpack = \"llmpack.cli:main\"" in (ROOT / "pyproject.toml").read_text()
    subcommands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert (entrypoint[1:] + cmd)[0] in subcommands


def test_the_product_never_imports_development_code() -> None:
    """The images install src/llmpack only: the local control plane, the demo and the tests stay outside it."""
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "src" / "llmpack").rglob("*.py")
                 if re.search(r"^\s*(from|import) (llmpack_dev|tests)\b", path.read_text(), re.M)]
    assert offenders == []
    assert not (ROOT / "src" / "llmpack" / "testing").exists()
