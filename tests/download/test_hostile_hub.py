"""llmpack download against a Hub that lies: unsafe file names, empty bodies, flaky links, 429/5xx with any
Retry-After. Nothing is ever written outside --local-dir, nothing loops forever, every failure is one line."""

from __future__ import annotations

import time
from fnmatch import fnmatch
from pathlib import Path

import pytest

from tests.download.conftest import (
    EITHER_WAY,
    PARTS,
    assert_complete,
    download,
    files_of,
    regular_files,
    the_error,
)
from tests.hub.server import HubServer, hostile_repo


def file_requests(hub: HubServer) -> int:
    return sum(n for key, n in hub.requests.items() if "/resolve/" in key)


@pytest.mark.parametrize(("name", "why"), [
    ("../x", "parent directory"),
    ("sub/../../x", "parent directory"),
    ("ABSOLUTE", "absolute path"),
    ("a\0b", "NUL"),
    ("a\\..\\..\\x", "backslash"),
    ("./x", "not a normalised path"),
    ("a//b", "not a normalised path"),
    ("line\nbreak", "control character"),
    (".llmpack/complete.json", "llmpack's own state"),
    ("x" * 251, "longer than 250 bytes"),
])
def test_a_listing_that_names_an_unsafe_path_writes_nothing_anywhere(hub: HubServer, tmp_path: Path, name: str,
                                                                     why: str) -> None:
    victim = tmp_path / "victim"
    name = name.replace("ABSOLUTE", str(victim))
    hub.repos["evil/model"] = hostile_repo("evil/model", name)
    target = tmp_path / "deep" / "er" / "cache"
    result = download(hub, tmp_path, "evil/model", "--local-dir", str(target))
    assert result.returncode == 9, result.stderr
    line = the_error(result)
    assert repr(name)[:100] in line
    assert why in line
    assert regular_files(tmp_path / "deep") == []  # not even the honest config.json: the whole listing is refused
    assert not victim.exists()
    assert file_requests(hub) == 0


def test_a_listing_that_names_a_file_and_its_parent_as_files_is_refused(hub: HubServer, tmp_path: Path) -> None:
    hub.repos["evil/model"] = hostile_repo("evil/model", "weights", "weights/shard.bin")
    result = download(hub, tmp_path, "evil/model", "--local-dir", str(tmp_path / "c"))
    assert result.returncode == 9, result.stderr
    assert "'weights'" in the_error(result)
    assert file_requests(hub) == 0


@pytest.mark.parametrize("next_page", ["SAME", "http://127.0.0.2:9/api/models/org/model/tree/main"])
def test_a_listing_whose_pages_never_end_or_lead_elsewhere_is_refused(hub: HubServer, tmp_path: Path,
                                                                      next_page: str) -> None:
    commit = hub.repos["org/model"].refs["main"]
    hub.faults.next_page = next_page.replace(
        "SAME", f"{hub.url}/api/models/org/model/tree/{commit}?recursive=true&expand=false")
    result = download(hub, tmp_path, "org/model", "--local-dir", str(tmp_path / "c"))
    assert result.returncode == 9, result.stderr
    assert ("pages do not end" if "SAME" in next_page else "another host") in the_error(result)
    assert file_requests(hub) == 0


@pytest.mark.parametrize("repo_id", ["../../etc", "org/..", "", "org/model/extra", "/etc", "org/-x", "org/a--b"])
def test_an_invalid_model_id_is_a_usage_error_before_the_hub_is_asked(hub: HubServer, tmp_path: Path,
                                                                      repo_id: str) -> None:
    result = download(hub, tmp_path, repo_id, "--local-dir", str(tmp_path / "c"))
    assert result.returncode == 2, result.stderr
    line = the_error(result)
    assert "is not a Hugging Face repo id" in line
    assert "spec.model.name" in line
    assert sum(hub.requests.values()) == 0
    assert not (tmp_path / "c").exists()


def test_an_always_empty_body_fails_in_bounded_time_with_exit_7(hub: HubServer, tmp_path: Path) -> None:
    hub.faults.empty_bodies = 10**9
    started = time.monotonic()
    result = download(hub, tmp_path, "org/model", "--local-dir", str(tmp_path / "c"), "--include", "config.json")
    assert result.returncode == 7, result.stderr
    assert time.monotonic() - started < 20
    line = the_error(result)
    assert "config.json" in line
    assert "empty body" in line
    assert file_requests(hub) == 7  # the first try and 6 retries, not ~1,300 a second
    assert not (tmp_path / "c" / "config.json").exists()


def test_an_always_empty_body_of_a_file_in_parts_fails_in_bounded_time_with_exit_7(hub: HubServer,
                                                                                  tmp_path: Path) -> None:
    hub.faults.empty_bodies = 10**9
    shard = "model-00001-of-00003.safetensors"
    started = time.monotonic()
    result = download(hub, tmp_path, "org/model", "--local-dir", str(tmp_path / "c"), "--include", shard, *PARTS)
    assert result.returncode == 7, result.stderr
    assert time.monotonic() - started < 20
    line = the_error(result)
    assert shard in line
    assert "empty body" in line
    assert 7 <= file_requests(hub) <= 4 * 7  # each of the four parts' budgets at most, not ~1,300 a second
    assert not (tmp_path / "c" / shard).exists()


@EITHER_WAY
def test_a_connection_that_drops_every_256_kib_still_finishes_fetching_each_byte_once(hub: HubServer, tmp_path: Path,
                                                                                      way: tuple[str, ...]) -> None:
    hub.faults.drop_every = 256 << 10  # 16 drops per 4 MiB shard: far more than the retry budget of 6
    result = download(hub, tmp_path, "org/model", "--local-dir", str(tmp_path / "c"), *way,
                      LLMPACK_RETRY_SECONDS="0.5")
    assert result.returncode == 0, result.stderr
    assert_complete(tmp_path / "c", files_of(hub))
    assert sum(hub.served.values()) == sum(len(d) for d in files_of(hub).values())


def test_hub_api_calls_retry_429_and_5xx_and_ignore_a_retry_after_they_cannot_trust(hub: HubServer,
                                                                                   tmp_path: Path) -> None:
    hub.faults.api_errors = [(429, "-1"), (503, "abc"), (500, "99999999999"), (502, None), (429, "1"), (504, "1e3")]
    started = time.monotonic()
    result = download(hub, tmp_path, "org/model", "--local-dir", str(tmp_path / "c"))
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert_complete(tmp_path / "c", files_of(hub))
    assert hub.faults.api_errors == []
    assert 1 <= took < 15  # waited the one sane Retry-After, not the 3 years of the huge one


def test_a_hub_api_that_keeps_failing_is_a_network_error_in_bounded_time(hub: HubServer, tmp_path: Path) -> None:
    hub.faults.api_errors = [(503, None)] * 50
    started = time.monotonic()
    result = download(hub, tmp_path, "org/model", "--local-dir", str(tmp_path / "c"))
    assert result.returncode == 7, result.stderr
    assert time.monotonic() - started < 20
    assert "503" in the_error(result)
    assert len(hub.faults.api_errors) == 50 - 7


@pytest.mark.parametrize(("include", "way"), [("*.json", ()), ("model-00001-of-00003.safetensors", PARTS)],
                         ids=["one-stream", "ranged-parts"])
def test_file_gets_retry_429_and_5xx_and_do_not_wait_out_a_malformed_retry_after(hub: HubServer, tmp_path: Path,
                                                                               include: str,
                                                                               way: tuple[str, ...]) -> None:
    hub.faults.file_errors = [(429, "-1"), (503, "abc"), (429, "86400000"), (500, "1.5e2"), (502, None)]
    started = time.monotonic()
    result = download(hub, tmp_path, "org/model", "--local-dir", str(tmp_path / "c"), "--include", include, *way)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 10
    assert hub.faults.file_errors == []
    assert_complete(tmp_path / "c", {p: d for p, d in files_of(hub).items() if fnmatch(p, include)})


@pytest.mark.parametrize("endpoint", ["nonsense", "ftp://hub.example", "http://[::1"])
def test_an_endpoint_that_is_not_an_http_url_is_a_usage_error(hub: HubServer, tmp_path: Path, endpoint: str) -> None:
    result = download(hub, tmp_path, "org/model", "--local-dir", str(tmp_path / "c"), HF_ENDPOINT=endpoint)
    assert result.returncode == 2, result.stderr
    assert "HF_ENDPOINT" in the_error(result)
    assert not (tmp_path / "c").exists()
