"""`llmpack download` against `hf download`, side by side on one loopback Hub server, shape by shape.

Shapes (select with --shapes, comma-separated; default all):
  1g          one 1 GiB file
  2x128       two 128 MiB files
  4x256       four 256 MiB files
  small       200 small files (1-64 KiB) and one 256 MiB file
  1g-40, 2x128-40, 4x256-40
              the first three with the server limited to 40 MB/s per connection, as a CDN edge is
  warm        the re-run of a complete directory (the `small` shape: the most files to look at)
  replicas    three downloaders into one directory at once: bytes served / model size
  kill        SIGKILL half way through a 256 MiB file, then run again: bytes fetched twice

Each timed shape runs --pairs pairs (default 5), alternating which tool goes first, each into a fresh
directory, and prints the medians, their ratio (llmpack / hf; below 1 is faster), the median CPU time
(user + system) of each client, and llmpack's peak RSS. Verification stays on (llmpack hashes every byte;
hf only checks sizes). The box's load average is printed with each shape: compare runs only side by side.
Targets (issue 21): unthrottled <= 1.0x hf, throttled <= 0.5x, warm <= 0.3 s, peak RSS <= ~100 MB for 1 GiB.

Rerun: .venv/bin/python bench/download.py [--shapes 1g,2x128-40,warm] [--pairs 5] [--llmpack-src DIR]
  --llmpack-src runs another checkout's downloader (e.g. `git worktree add /tmp/base main`, then
  --llmpack-src /tmp/base/src) in place of this one's, for before/after figures in one run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hub.server import HubServer, Repo, commit_id  # noqa: E402

BIN = Path(sys.executable).parent
MIB = 1 << 20
EDGE = 40_000_000  # bytes per second per connection


def _bytes(seed: str, size: int) -> bytes:
    block = hashlib.sha256(seed.encode()).digest() * 2048  # 64 KiB, then repeated: cheap to make, not zeros
    return (block * (size // len(block) + 1))[:size]


def repo(shards: list[int], small: int = 0) -> Repo:
    files = {"config.json": b'{"model_type": "llama"}'}
    for i, size in enumerate(shards):
        files[f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"] = _bytes(f"shard{i}", size)
    rng = random.Random(21)
    for i in range(small):
        files[f"extra/file-{i:03d}.json"] = _bytes(f"small{i}", rng.randint(1 << 10, 64 << 10))
    commit = commit_id(f"bench:{shards}:{small}")
    return Repo("org/model", {commit: files}, {"main": commit})


@dataclass(frozen=True)
class Shape:
    name: str
    shards: list[int]
    small: int = 0
    rate: float | None = None


SHAPES = {s.name: s for s in [
    Shape("1g", [1024 * MIB]),
    Shape("2x128", [128 * MIB] * 2),
    Shape("4x256", [256 * MIB] * 4),
    Shape("small", [256 * MIB], small=200),
    Shape("1g-40", [1024 * MIB], rate=EDGE),
    Shape("2x128-40", [128 * MIB] * 2, rate=EDGE),
    Shape("4x256-40", [256 * MIB] * 4, rate=EDGE),
]}
CHECKS = ("warm", "replicas", "kill")


@dataclass
class Run:
    seconds: float
    cpu: float
    rss_mb: float


@dataclass
class Tools:
    llmpack_src: Path | None
    extra: list[str] = field(default_factory=list)

    def argv(self, name: str, target: Path) -> list[str]:
        if name == "hf":
            return [str(BIN / "hf"), "download", "org/model", "--local-dir", str(target)]
        return [sys.executable, "-m", "llmpack.cli", "download", "org/model", "--local-dir", str(target), *self.extra]

    def env(self, hub: HubServer, home: Path) -> dict[str, str]:
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HOME": str(home), "HF_HUB_DISABLE_TELEMETRY": "1",
               "HF_HUB_DISABLE_UPDATE_CHECK": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
               "LLMPACK_PROGRESS_SECONDS": "600"}
        if self.llmpack_src is not None:
            env["PYTHONPATH"] = str(self.llmpack_src)
        return env


def _peak_rss(pid: int, seen: int) -> int:
    """VmHWM of a running process, in KiB (wait4's ru_maxrss would count this process's memory: Linux
    carries the parent's high-water mark across fork and exec)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return max(seen, int(line.split()[1]))
    except (OSError, ValueError):
        pass
    return seen


def run(argv: list[str], env: dict[str, str], timeout: float = 900) -> Run:
    """Wall time, CPU time (wait4: the child's own rusage) and peak RSS of one process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline, peak = started + timeout, 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        peak = _peak_rss(proc.pid, peak)
        if time.perf_counter() > deadline:
            proc.kill()
        time.sleep(0.005)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed ({proc.returncode}): {err[-2000:]}")
    return Run(seconds, usage.ru_utime + usage.ru_stime, peak / 1024)


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def timed_pairs(shape: Shape, tools: Tools, pairs: int, work: Path) -> list[str]:
    hub = HubServer([repo(shape.shards, shape.small)]).start()
    hub.faults.rate = shape.rate
    env = tools.env(hub, work / "home")
    size = sum(len(d) for d in next(iter(hub.repos["org/model"].commits.values())).values())
    runs: dict[str, list[Run]] = {"llmpack": [], "hf": []}
    before = load()
    try:
        for i in range(pairs):
            for name in ("llmpack", "hf") if i % 2 == 0 else ("hf", "llmpack"):
                target = work / f"{shape.name}-{name}-{i}"
                runs[name].append(run(tools.argv(name, target), env))
                shutil.rmtree(target)
    finally:
        hub.stop()
    ours, theirs = (statistics.median(r.seconds for r in runs[n]) for n in ("llmpack", "hf"))
    ratios = [a.seconds / b.seconds for a, b in zip(runs["llmpack"], runs["hf"], strict=True)]
    cpu = {n: statistics.median(r.cpu for r in runs[n]) for n in runs}
    return [f"{shape.name:9} llmpack {ours:6.2f} s  hf {theirs:6.2f} s  ratio {ours / theirs:4.2f} "
            f"(pairs {min(ratios):.2f}-{max(ratios):.2f})  cpu {cpu['llmpack']:.2f} s vs {cpu['hf']:.2f} s  "
            f"llmpack {size / ours / 1e6:.0f} MB/s, peak RSS {max(r.rss_mb for r in runs['llmpack']):.0f} MB "
            f"(hf {max(r.rss_mb for r in runs['hf']):.0f} MB)  [{before}; {load()}]"]


def warm(tools: Tools, pairs: int, work: Path) -> list[str]:
    shape = SHAPES["small"]
    hub = HubServer([repo(shape.shards, shape.small)]).start()
    env = tools.env(hub, work / "home")
    runs: dict[str, list[Run]] = {}
    try:
        for name in ("llmpack", "hf"):
            run(tools.argv(name, work / f"warm-{name}"), env)
        for i in range(pairs):
            for name in ("llmpack", "hf") if i % 2 == 0 else ("hf", "llmpack"):
                runs.setdefault(name, []).append(run(tools.argv(name, work / f"warm-{name}"), env))
    finally:
        hub.stop()
    ours, theirs = (statistics.median(r.seconds for r in runs[n]) for n in ("llmpack", "hf"))
    cpu = {n: statistics.median(r.cpu for r in runs[n]) for n in runs}
    # On a busy box the wall time is mostly waiting for a CPU; the CPU time is what a quiet one would take.
    return [f"warm      llmpack {ours:6.3f} s  hf {theirs:6.3f} s  cpu {cpu['llmpack']:.3f} s vs {cpu['hf']:.3f} s  "
            f"({len(shape.shards) + shape.small + 1} files complete; target <= 0.3 s)  [{load()}]"]


def replicas(tools: Tools, work: Path) -> list[str]:
    shape = SHAPES["4x256"]
    hub = HubServer([repo(shape.shards)]).start()
    env, total, out = tools.env(hub, work / "home"), sum(shape.shards), []
    try:
        for name in ("llmpack", "hf"):
            hub.served.clear()
            target = work / f"{name}-shared"
            procs = [subprocess.Popen(tools.argv(name, target), env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL) for _ in range(3)]
            codes = [p.wait(900) for p in procs]
            failed = "" if codes == [0] * 3 else f" (exit codes {codes})"
            out.append(f"replicas  {name:8} 3 downloaders into one directory: served "
                       f"{sum(hub.served.values()) / total:.2f} x the model{failed}")
            shutil.rmtree(target)
    finally:
        hub.stop()
    return out


def kill(tools: Tools, work: Path) -> list[str]:
    size, shard = 256 * MIB, "model-00001-of-00001.safetensors"
    hub = HubServer([repo([size])]).start()
    env, out = tools.env(hub, work / "home"), []
    try:
        for name in ("llmpack", "hf"):
            hub.served.clear()
            hub.faults.rate = 64 * MIB
            target = work / f"{name}-killed"
            proc = subprocess.Popen(tools.argv(name, target), env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            while hub.served[f"org/model/{shard}"] < size // 2 and proc.poll() is None:
                time.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            hub.faults.rate = None
            run(tools.argv(name, target), env)
            again = hub.served[f"org/model/{shard}"] - size
            out.append(f"kill      {name:8} SIGKILL at 50% of {size // MIB} MiB, then run again: "
                       f"{again / MIB:.1f} MiB fetched twice")
            shutil.rmtree(target)
    finally:
        hub.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default=",".join([*SHAPES, *CHECKS]),
                        help=f"comma-separated, of: {', '.join([*SHAPES, *CHECKS])}")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--llmpack-src", type=Path, help="PYTHONPATH of another checkout's llmpack to measure")
    parser.add_argument("--llmpack-args", default="", help="extra `llmpack download` options, e.g. '--connections 4'")
    args = parser.parse_args()
    chosen = [s for s in args.shapes.split(",") if s]
    if unknown := [s for s in chosen if s not in SHAPES and s not in CHECKS]:
        parser.error(f"unknown shapes: {', '.join(unknown)}")
    tools = Tools(args.llmpack_src, args.llmpack_args.split())
    steps: dict[str, Callable[[Path], list[str]]] = {
        "warm": lambda w: warm(tools, args.pairs, w), "replicas": lambda w: replicas(tools, w),
        "kill": lambda w: kill(tools, w)}
    print(f"llmpack {'from ' + str(args.llmpack_src) if args.llmpack_src else 'of this checkout'} "
          f"{' '.join(tools.extra)}; {os.cpu_count()} CPUs; median of {args.pairs} pairs; {load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="llmpack-bench-") as tmp:
        for name in chosen:
            lines = steps[name](Path(tmp)) if name in steps else timed_pairs(SHAPES[name], tools, args.pairs, Path(tmp))
            for line in lines:
                print(line, flush=True)
    extra = f" --llmpack-src {args.llmpack_src}" if args.llmpack_src else ""
    print(f"rerun: .venv/bin/python bench/download.py --shapes {','.join(chosen)} --pairs {args.pairs}{extra}")


if __name__ == "__main__":
    main()
