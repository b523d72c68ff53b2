"""`llmpack download --size-only`: the sizing step, against the test Hub. It fetches no file, adds up what a
download would take (with the same include/exclude rules), and keeps asking a Hub that does not answer."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.download.conftest import TOKEN, download, downloader
from tests.hub.server import HubServer


def sized(stderr: str) -> dict[str, object]:
    (line,) = [json.loads(ln) for ln in stderr.splitlines() if ln.startswith("{") and '"sized"' in ln]
    return dict(line)


def total(hub: HubServer, repo: str, revision: str = "main", suffix: str = "") -> int:
    r = hub.repos[repo]
    return sum(len(d) for p, d in r.commits[r.refs[revision]].items() if p.endswith(suffix))


def test_the_size_of_a_revision_is_reported_without_fetching_a_file(hub: HubServer, tmp_path: Path) -> None:
    result = download(hub, tmp_path, "org/model", "--size-only", "--revision", "v1")
    assert result.returncode == 0, result.stderr
    report = sized(result.stderr)
    assert report["commit"] == hub.repos["org/model"].refs["v1"]
    assert report["bytes"] == total(hub, "org/model", "v1")
    assert report["files"] == 5
    assert hub.served == {}


def test_the_size_follows_the_downloads_include_and_exclude_rules(hub: HubServer, tmp_path: Path) -> None:
    result = download(hub, tmp_path, "org/model", "--size-only", "--include", "*.safetensors")
    assert result.returncode == 0, result.stderr
    assert sized(result.stderr)["bytes"] == total(hub, "org/model", suffix=".safetensors")


def test_a_gated_repo_is_sized_with_its_token_and_refused_without_one(hub: HubServer, tmp_path: Path) -> None:
    assert download(hub, tmp_path, "org/gated", "--size-only", HF_TOKEN=TOKEN).returncode == 0
    refused = download(hub, tmp_path, "org/gated", "--size-only")
    assert refused.returncode == 3
    (line,) = [ln for ln in refused.stderr.splitlines() if not ln.startswith("{")]
    assert line.startswith("llmpack download: ")


def test_a_hub_that_does_not_answer_is_asked_again_until_it_does(hub: HubServer, tmp_path: Path) -> None:
    hub.faults.api_errors = [(503, None)] * 10_000
    proc = downloader(hub, tmp_path, "org/model", "--size-only", LLMPACK_RETRY_SECONDS="0.01")
    try:
        time.sleep(2.5)
        assert proc.poll() is None  # still asking, not failed
        hub.faults.api_errors.clear()
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read() if proc.stderr else ""
    assert '"retrying_in"' in stderr
    assert sized(stderr)["bytes"] == total(hub, "org/model")


def test_without_size_only_a_local_dir_is_still_required(hub: HubServer, tmp_path: Path) -> None:
    result = download(hub, tmp_path, "org/model")
    assert result.returncode == 2
    assert result.stderr.strip() == "llmpack download: --local-dir DIR is required (unless --size-only)"
