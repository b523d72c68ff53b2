"""A directory another tool filled (the Serving Pack's `hf download --local-dir`, an older revision) and that
holds no completion record of ours: what is there is verified against the Hub's hashes and kept, and only what
is missing or wrong is fetched. The directory is filled by the real `hf download` against the test Hub."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.download.conftest import assert_complete, download, env_for, files_of, the_error
from tests.hub.server import HubServer

CORRUPT = "model-00001-of-00003.safetensors"
MISSING = "model-00003-of-00003.safetensors"


def filled_by_the_pack(hub: HubServer, tmp_path: Path, *args: str) -> Path:
    """What the Serving Pack's init container leaves: `hf download <repo> --local-dir /model-cache`."""
    hf = shutil.which("hf", path=str(Path(sys.executable).parent))
    assert hf is not None
    target = tmp_path / "model-cache"
    result = subprocess.run([hf, "download", "org/model", "--local-dir", str(target), *args],
                            env=env_for(hub, tmp_path), capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert (target / ".cache" / "huggingface").is_dir()
    return target


def events(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_directory_the_pack_filled_is_verified_without_fetching_a_byte_of_its_files(hub: HubServer,
                                                                                    tmp_path: Path) -> None:
    target = filled_by_the_pack(hub, tmp_path)
    served = dict(hub.served)
    theirs = tree(target / ".cache")
    result = download(hub, tmp_path, "org/model", "--local-dir", str(target))
    assert result.returncode == 0, result.stderr
    assert dict(hub.served) == served  # not one byte of file content
    assert_complete(target, files_of(hub))
    verified = next(e for e in events(result.stderr) if e["phase"] == "verified")
    assert verified["files_done"] == verified["files_total"] == len(files_of(hub))
    assert verified["refetch"] == []
    assert verified["missing"] == 0
    assert tree(target / ".cache") == theirs  # hf's bookkeeping is not ours: left as it was

    again = download(hub, tmp_path, "org/model", "--local-dir", str(target))
    assert again.returncode == 0, again.stderr
    assert events(again.stderr)[-1]["fast_path"] is True  # the verification wrote our completion record


def test_a_corrupt_and_a_missing_file_are_fetched_and_nothing_else(hub: HubServer, tmp_path: Path) -> None:
    target = filled_by_the_pack(hub, tmp_path)
    data = bytearray((target / CORRUPT).read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only its hash can tell
    (target / CORRUPT).write_bytes(bytes(data))
    (target / MISSING).unlink()
    (target / "notes.txt").write_text("left by someone else\n")
    served = dict(hub.served)

    result = download(hub, tmp_path, "org/model", "--local-dir", str(target))
    assert result.returncode == 0, result.stderr
    fetched = {k.split("/", 2)[2]: n - served.get(k, 0) for k, n in hub.served.items() if n != served.get(k, 0)}
    expected = files_of(hub)
    assert fetched == {CORRUPT: len(expected[CORRUPT]), MISSING: len(expected[MISSING])}
    assert_complete(target, expected)
    assert (target / "notes.txt").read_text() == "left by someone else\n"  # not in the listing: not ours
    phases = [e["phase"] for e in events(result.stderr)]
    assert phases.index("verifying") < phases.index("verified") < phases.index("downloading") \
        < phases.index("complete")
    verified = next(e for e in events(result.stderr) if e["phase"] == "verified")
    assert verified["refetch"] == [CORRUPT]
    assert verified["missing"] == 1


def test_a_file_whose_replacement_fails_verification_too_is_left_as_it_was(hub: HubServer, tmp_path: Path) -> None:
    target = filled_by_the_pack(hub, tmp_path, "--include", CORRUPT)
    data = bytearray((target / CORRUPT).read_bytes())
    data[0] ^= 0xFF
    (target / CORRUPT).write_bytes(bytes(data))
    hub.faults.corrupt[CORRUPT] = 2  # the fetch and its retry both come corrupt
    result = download(hub, tmp_path, "org/model", "--local-dir", str(target), "--include", CORRUPT)
    assert result.returncode == 8
    assert CORRUPT in the_error(result)
    assert (target / CORRUPT).read_bytes() == bytes(data)  # never truncated in place, never replaced unverified
    assert not (target / ".llmpack" / "complete.json").exists()


def test_a_new_revision_hashes_only_the_files_whose_hash_changed_since_our_record(hub: HubServer,
                                                                                tmp_path: Path) -> None:
    target = tmp_path / "c"
    assert download(hub, tmp_path, "org/model", "--local-dir", str(target), "--revision", "v1").returncode == 0
    served = dict(hub.served)
    result = download(hub, tmp_path, "org/model", "--local-dir", str(target), "--revision", "v2")
    assert result.returncode == 0, result.stderr
    assert_complete(target, files_of(hub, ref="v2"))
    changed = {p for p, d in files_of(hub, ref="v2").items() if files_of(hub, ref="v1").get(p) != d}
    assert changed == {"config.json", CORRUPT}  # the test repo's revisions differ in these (same sizes)
    verified = next(e for e in events(result.stderr) if e["phase"] == "verified")
    assert verified["files_total"] == 2  # the others were verified when our record was written
    assert {k.split("/", 2)[2] for k, n in hub.served.items() if n != served.get(k, 0)} == changed
