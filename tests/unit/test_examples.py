"""Every example renders, and its output matches the reviewed golden file (UPDATE_GOLDEN=1 to refresh)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from llmpack.config import Config
from llmpack.manifests import load_models, load_passthroughs
from llmpack.render import offline_facts, passthrough_plan, render

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
GOLDEN = Path(__file__).parent / "golden"


def test_there_are_the_five_seed_examples() -> None:
    assert {p.stem for p in EXAMPLES} >= {
        "qwen-int4-pvc", "devstral-small", "oci-model", "emptydir-small", "preload-false"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_renders_as_reviewed(example: Path) -> None:
    objects = [obj for model in load_models([example]) for obj in render(model, Config(), weights_ready=True)]
    objects += [obj for pm in load_passthroughs([example])  # nothing but routing: its whole plan
                for obj in passthrough_plan.plan(pm, Config(), offline_facts()).objects]
    text = yaml.safe_dump_all(objects, sort_keys=False)
    golden = GOLDEN / f"{example.stem}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"no golden file for {example.name}: run make golden and review it"
    assert text == golden.read_text()
