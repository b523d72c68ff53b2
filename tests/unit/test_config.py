"""Operator settings from values files and environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from llmpack.config import (
    DEFAULT_DOWNLOADER_IMAGE,
    DEFAULT_SERVING_IMAGE,
    PACK_SPELLINGS,
    SETTINGS,
    ConfigError,
    load_config,
)
from tests.serving_pack import CHART, VALUES, spelling_pairs


def test_defaults_need_no_file_and_no_environment() -> None:
    config = load_config(None, env={})
    assert config.serving_image == DEFAULT_SERVING_IMAGE
    assert config.storage_class_name == ""
    assert config.access_mode == "ReadWriteOnce"
    assert config.watch_namespaces == ()
    assert "latest" not in config.downloader_image


def test_environment_overrides_the_values_file(tmp_path: Path) -> None:
    values = tmp_path / "v.yaml"
    values.write_text("defaults: {storage: {storageClassName: gp3}}\nwatchNamespaces: [a, b]\n")
    config = load_config(values, env={"LLMPACK_STORAGE_CLASS_NAME": "efs"})
    assert config.storage_class_name == "efs"
    assert config.watch_namespaces == ("a", "b")
    assert load_config(None, env={"LLMPACK_WATCH_NAMESPACES": "x, y,"}).watch_namespaces == ("x", "y")


def test_a_bad_setting_names_where_it_came_from(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="LLMPACK_FS_GROUP"):
        load_config(None, env={"LLMPACK_FS_GROUP": "many"})
    values = tmp_path / "v.yaml"
    values.write_text("- not a mapping\n")
    with pytest.raises(ConfigError, match="values must be a mapping"):
        load_config(values, env={})


def _write(tmp_path: Path, values: dict[str, Any]) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_the_charts_own_values_file_gives_the_operators_defaults() -> None:
    # But for metrics: on in the chart (a port of its own pod), off for a bare `llmpack run` (no port taken).
    chart = load_config(CHART / "values.yaml", env={})
    assert chart == load_config(None, env={}).model_copy(update={"metrics_port": 8081})


def test_the_serving_packs_values_file_loads_unchanged_in_the_packs_meaning() -> None:
    config = load_config(VALUES, env={})
    assert (config.external_gateway_name, config.internal_gateway_name) == ("nebari-gateway", "nebari-internal-gateway")
    assert config.manage_listeners is True
    assert config.serving_image == "ghcr.io/llm-d/llm-d-cuda:v0.7.0"
    assert config.downloader_image == DEFAULT_DOWNLOADER_IMAGE  # the pack's own downloader is never used


def test_llmpacks_spelling_wins_when_set_and_an_empty_one_falls_back_to_the_packs(tmp_path: Path) -> None:
    both = {"routing": {"baseDomain": "ours.example"}, "platform": {"baseDomain": "pack.example"}}
    assert load_config(_write(tmp_path, both), env={}).base_domain == "ours.example"
    empty = {"routing": {"baseDomain": ""}, "platform": {"baseDomain": "pack.example"}}
    assert load_config(_write(tmp_path, empty), env={}).base_domain == "pack.example"
    mirror = {"modelDownloader": {"image": {"repository": "mirror.example/dl", "tag": "1.2"}}}
    assert load_config(_write(tmp_path, mirror), env={}).downloader_image == "mirror.example/dl:1.2"


def test_a_bad_setting_in_the_packs_spelling_names_the_packs_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"platform\.gateway\.manageSharedListeners"):
        load_config(_write(tmp_path, {"platform": {"gateway": {"manageSharedListeners": "sometimes"}}}), env={})


def test_the_chart_and_the_operator_agree_on_every_pair_of_spellings() -> None:
    settings = {key for key, _, _ in SETTINGS}
    assert {ours: pack for pack, ours, _ in spelling_pairs() if ours in settings} == PACK_SPELLINGS
