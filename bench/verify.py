"""How long `llmpack download` takes to verify a directory another tool filled (the Serving Pack's `hf
download --local-dir`, no completion record of ours), against `sha256sum` of the same files, side by side.

A loopback Hub serves a repo of --shards generated safetensors files of --mib MiB each; the directory holds
exactly those files (and no `.llmpack/`), so llmpack hashes every byte and fetches none (checked: the Hub's
served bytes stay 0). Each round runs, in alternating order: llmpack (its default threads), llmpack with
LLMPACK_VERIFY_THREADS=1, and `sha256sum` of the files (one process, one file after another). `warm`: the
files are in the page cache; `cold`: each file's cached pages are dropped before every run
(posix_fadvise DONTNEED on those files only, nothing else on the box is touched), so the disk is read.
Prints the median of --rounds (default 3) per tool, its rate and CPU time, and the ratio to sha256sum.

Rerun: .venv/bin/python bench/verify.py [--shards 4] [--mib 512] [--rounds 3] [--cache warm,cold]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.download import MIB, Run, _bytes, load, run  # noqa: E402
from tests.hub.server import HubServer, Repo, commit_id  # noqa: E402


def filled(shards: int, mib: int, where: Path) -> tuple[Repo, list[Path]]:
    """The repo, and a directory holding its files as `hf download --local-dir` leaves them."""
    files = {"config.json": b'{"model_type": "llama"}'}
    for i in range(shards):
        files[f"model-{i + 1:05d}-of-{shards:05d}.safetensors"] = _bytes(f"verify{i}", mib * MIB)
    paths = []
    for name, data in files.items():
        (where / name).write_bytes(data)
        paths.append(where / name)
    (where / ".cache" / "huggingface").mkdir(parents=True)
    commit = commit_id(f"bench-verify:{shards}:{mib}")
    return Repo("org/model", {commit: files}, {"main": commit}), paths


def evict(paths: list[Path]) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # dirty pages are not dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--mib", type=int, default=512, help="size of each shard")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache", default="warm,cold", help="comma-separated: warm, cold")
    args = parser.parse_args()
    sha256sum = shutil.which("sha256sum")
    if sha256sum is None:
        raise SystemExit("bench/verify.py: sha256sum is not on PATH (coreutils)")
    print(f"{args.shards} x {args.mib} MiB; {os.cpu_count()} CPUs; median of {args.rounds} rounds; {load()}",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="llmpack-bench-verify-", dir=ROOT) as tmp:
        target = Path(tmp) / "model-cache"
        target.mkdir()
        repo, paths = filled(args.shards, args.mib, target)
        size = sum(p.stat().st_size for p in paths)
        hub = HubServer([repo]).start()
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HOME": str(Path(tmp) / "home"),
               "HF_HUB_DISABLE_TELEMETRY": "1", "LLMPACK_PROGRESS_SECONDS": "600"}
        ours = [sys.executable, "-m", "llmpack.cli", "download", "org/model", "--local-dir", str(target)]
        tools = {"llmpack": (ours, env), "llmpack-1": (ours, {**env, "LLMPACK_VERIFY_THREADS": "1"}),
                 "sha256sum": ([sha256sum, *map(str, paths)], env)}
        try:
            for cache in [c for c in args.cache.split(",") if c]:
                runs: dict[str, list[Run]] = {name: [] for name in tools}
                for i in range(args.rounds):
                    for name in list(tools)[i % len(tools):] + list(tools)[:i % len(tools)]:
                        shutil.rmtree(target / ".llmpack", ignore_errors=True)  # no record: verify it all
                        if cache == "cold":
                            evict(paths)
                        argv, environment = tools[name]
                        runs[name].append(run(argv, environment))
                if sum(hub.served.values()):
                    raise SystemExit(f"bench/verify.py: the Hub served {sum(hub.served.values())} bytes of files")
                base = statistics.median(r.seconds for r in runs["sha256sum"])
                for name, done in runs.items():
                    seconds = statistics.median(r.seconds for r in done)
                    cpu = statistics.median(r.cpu for r in done)
                    print(f"{cache:4} {name:9} {seconds:6.2f} s  {size / seconds / 1e9:5.2f} GB/s  cpu {cpu:5.2f} s  "
                          f"x{seconds / base:4.2f} of sha256sum  (rounds {min(r.seconds for r in done):.2f}-"
                          f"{max(r.seconds for r in done):.2f} s)  [{load()}]", flush=True)
        finally:
            hub.stop()
    print(f"rerun: .venv/bin/python bench/verify.py --shards {args.shards} --mib {args.mib} --rounds {args.rounds} "
          f"--cache {args.cache}")


if __name__ == "__main__":
    main()
