"""Operator settings from values files and environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmpack.config import DEFAULT_SERVING_IMAGE, ConfigError, load_config


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
