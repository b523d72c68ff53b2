"""A file larger than a part comes in ranged parts over several connections into one partial file: each byte
once, a kill resumes only what each part misses, a server that ignores Range or corrupts a part still ends
with the right file, and the parts go to the CDN the Hub redirects to, without the token."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from llmpack.downloader.partmap import load
from llmpack.downloader.plan import RemoteFile
from llmpack.downloader.safedir import SafeDir
from tests.download.conftest import PARTS, TOKEN, assert_complete, download, downloader, end, files_of, the_error
from tests.hub.server import HubServer, synthetic_repo

SHARD = "model-00001-of-00003.safetensors"
SIZE = 4 << 20
MIB = 1 << 20


def until(condition: Callable[[], bool], proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert proc.poll() is None, f"the downloader exited before {what}: {proc.stderr.read() if proc.stderr else ''}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def kill_when(condition: Callable[[], bool], proc: subprocess.Popen[str], what: str) -> None:
    try:
        until(condition, proc, what)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        end(proc)


def ranges(hub: HubServer, key: str) -> list[str | None]:
    return [asked for got, asked in hub.ranges if got == key]


def resolves(hub: HubServer, repo: str) -> int:
    return sum(n for key, n in hub.requests.items() if key.startswith(f"GET /{repo}/resolve/"))


def test_a_file_larger_than_a_part_comes_in_ranged_parts_over_several_connections_each_byte_once(
        hub: HubServer, tmp_path: Path) -> None:
    hub.faults.rate = 4 << 20  # per connection: slow enough that the parts overlap
    target = tmp_path / "c"
    result = download(hub, tmp_path, "org/model", "--local-dir", str(target), "--include", SHARD, *PARTS)
    assert result.returncode == 0, result.stderr
    assert_complete(target, {SHARD: files_of(hub)[SHARD]})
    key = f"org/model/{SHARD}"
    assert sorted(ranges(hub, key), key=str) == [f"bytes={i * MIB}-{(i + 1) * MIB - 1}" for i in range(4)]
    assert hub.served[key] == SIZE
    assert hub.at_once[key] >= 2
    assert not (target / ".llmpack" / "partial" / f"{SHARD}.map").exists()  # nothing left once it is in place


def test_a_kill_mid_part_resumes_only_the_bytes_each_part_misses(hub: HubServer, tmp_path: Path) -> None:
    hub.repos["org/big"] = synthetic_repo("org/big", shards=1, shard_size=8 * MIB)
    shard = "model-00001-of-00001.safetensors"
    key, size = f"org/big/{shard}", 8 * MIB
    hub.faults.rate = 1 << 20
    target = tmp_path / "c"
    proc = downloader(hub, tmp_path, "org/big", "--local-dir", str(target), "--include", shard, *PARTS)
    kill_when(lambda: hub.served[key] >= 5 * MIB, proc, "four parts through and the next four a quarter")
    part = target / ".llmpack" / "partial" / f"{shard}.part"
    with SafeDir(target) as root:
        found = load(root, RemoteFile(shard, size, sha256=hub.hashes(files_of(hub, "org/big")[shard])[1]),
                     part.stat().st_size)
        assert found, "the kill left no usable map of the parts"
        done = list(found.done)
        found.close()
    assert any(0 < n < MIB for n in done), done  # the kill came in the middle of parts
    deadline = time.monotonic() + 10
    while hub.sending(key):  # the server notices the kill at its next write (which it may still count)
        assert time.monotonic() < deadline
        time.sleep(0.01)
    hub.faults.rate = None
    first_run, served = len(hub.ranges), hub.served[key]

    result = download(hub, tmp_path, "org/big", "--local-dir", str(target), "--include", shard, *PARTS)
    assert result.returncode == 0, result.stderr
    assert_complete(target, {shard: files_of(hub, "org/big")[shard]})
    missing = {f"bytes={i * MIB + n}-{(i + 1) * MIB - 1}" for i, n in enumerate(done) if n < MIB}
    assert sorted(str(asked) for _, asked in hub.ranges[first_run:]) == sorted(missing)  # from where each stopped
    assert hub.served[key] - served == size - sum(done)


def test_a_server_that_ignores_range_still_delivers_a_file_meant_for_parts(hub: HubServer, tmp_path: Path) -> None:
    hub.faults.ignore_range = True
    target = tmp_path / "c"
    result = download(hub, tmp_path, "org/model", "--local-dir", str(target), *PARTS)
    assert result.returncode == 0, result.stderr
    assert_complete(target, files_of(hub))
    # Its first part came back whole, so that connection took the whole file; no other part was asked for.
    assert ranges(hub, f"org/model/{SHARD}") == ["bytes=0-1048575"]
    assert hub.served[f"org/model/{SHARD}"] == SIZE


def test_parts_already_fetched_are_finished_when_the_server_stops_honouring_range(hub: HubServer,
                                                                                  tmp_path: Path) -> None:
    key = f"org/model/{SHARD}"
    hub.faults.rate = 1 << 20
    target = tmp_path / "c"
    proc = downloader(hub, tmp_path, "org/model", "--local-dir", str(target), "--include", SHARD, *PARTS)
    kill_when(lambda: hub.served[key] >= 2 * MIB, proc, "half the parts' bytes")
    hub.faults.rate, hub.faults.ignore_range = None, True
    result = download(hub, tmp_path, "org/model", "--local-dir", str(target), "--include", SHARD, *PARTS)
    assert result.returncode == 0, result.stderr
    assert_complete(target, {SHARD: files_of(hub)[SHARD]})


def test_a_corrupt_part_has_the_whole_file_fetched_again_and_twice_is_an_error(hub: HubServer,
                                                                              tmp_path: Path) -> None:
    key = f"org/model/{SHARD}"
    hub.faults.corrupt[SHARD] = 1  # the part that carries the middle byte, once
    target = tmp_path / "c"
    result = download(hub, tmp_path, "org/model", "--local-dir", str(target), "--include", SHARD, *PARTS)
    assert result.returncode == 0, result.stderr
    assert_complete(target, {SHARD: files_of(hub)[SHARD]})
    # The Hub publishes one hash per file, none per part: a mismatch cannot be pinned on a part.
    assert hub.served[key] == 2 * SIZE

    hub.faults.corrupt[SHARD] = 2
    broken = tmp_path / "broken"
    result = download(hub, tmp_path, "org/model", "--local-dir", str(broken), "--include", SHARD, *PARTS)
    assert result.returncode == 8, result.stderr
    assert "downloaded twice" in the_error(result)
    assert not (broken / SHARD).exists()
    assert not (broken / ".llmpack" / "complete.json").exists()


def test_parts_go_straight_to_the_cdn_the_hub_redirects_to_and_the_token_never_does(hub: HubServer,
                                                                                    tmp_path: Path) -> None:
    hub.faults.cdn = True
    target = tmp_path / "c"
    result = download(hub, tmp_path, "org/gated", "--local-dir", str(target), *PARTS, HF_TOKEN=TOKEN)
    assert result.returncode == 0, result.stderr
    assert_complete(target, files_of(hub, "org/gated"))
    assert resolves(hub, "org/gated") == len(files_of(hub, "org/gated"))  # the Hub once per file, not per part
    assert len(hub.cdn_tokens) == 2 + 2 * 4  # config.json, tokenizer.json, and two shards of four parts
    assert set(hub.cdn_tokens) == {None}


def test_a_cdn_url_that_expired_is_asked_of_the_hub_again(hub: HubServer, tmp_path: Path) -> None:
    hub.faults.cdn = True
    target = tmp_path / "c"
    hub.faults.rate = 4 << 20
    proc = downloader(hub, tmp_path, "org/model", "--local-dir", str(target), "--include", SHARD,
                      "--part-size", "1Mi", "--connections", "2")  # parts 3 and 4 are asked for later
    try:
        until(lambda: bool(hub.cdn_tokens), proc, "the first GET at the CDN")
        hub.faults.expired = 2  # the signed URL the parts use has expired meanwhile
        assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        end(proc)
    assert_complete(target, {SHARD: files_of(hub)[SHARD]})
    assert resolves(hub, "org/model") >= 2


def test_an_http_proxy_from_the_environment_carries_the_api_calls_and_the_parts(hub: HubServer,
                                                                                tmp_path: Path) -> None:
    target = tmp_path / "c"
    result = download(hub, tmp_path, "org/model", "--local-dir", str(target), *PARTS,
                      HF_ENDPOINT="http://hub.invalid", HTTP_PROXY=hub.url, NO_PROXY="")
    assert result.returncode == 0, result.stderr  # hub.invalid does not resolve: only the proxy reaches it
    assert_complete(target, files_of(hub))


def test_a_part_map_that_cannot_be_trusted_starts_its_file_over(hub: HubServer, tmp_path: Path) -> None:
    target = tmp_path / "c"
    partial = target / ".llmpack" / "partial"
    partial.mkdir(parents=True)
    (partial / f"{SHARD}.part").write_bytes(b"\xff" * SIZE)
    (partial / f"{SHARD}.map").write_bytes(b"LLMPMAP1" + b"\x00" * 200)  # torn, or another version's
    result = download(hub, tmp_path, "org/model", "--local-dir", str(target), "--include", SHARD, *PARTS)
    assert result.returncode == 0, result.stderr
    assert_complete(target, {SHARD: files_of(hub)[SHARD]})
    assert hub.served[f"org/model/{SHARD}"] == SIZE


def test_a_symbolic_link_planted_as_a_part_map_is_refused_and_never_followed(hub: HubServer, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    target = tmp_path / "c"
    (target / ".llmpack" / "partial").mkdir(parents=True)
    link = target / ".llmpack" / "partial" / f"{SHARD}.map"
    link.symlink_to(victim)
    result = download(hub, tmp_path, "org/model", "--local-dir", str(target), "--include", SHARD, *PARTS)
    assert result.returncode == 10, result.stderr
    assert f"{link} is a symbolic link" in the_error(result)
    assert victim.read_bytes() == b"precious"


def test_connections_and_part_size_must_be_sensible(hub: HubServer, tmp_path: Path) -> None:
    for option, value in (("--connections", "0"), ("--part-size", "sixteen"), ("--part-size", "-1Mi"),
                          ("--part-size", "64Ki")):
        result = download(hub, tmp_path, "org/model", "--local-dir", str(tmp_path / "c"), option, value)
        assert result.returncode == 2, result.stderr
        assert option in result.stderr
    assert sum(hub.requests.values()) == 0
