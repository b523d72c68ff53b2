"""Chaos against `llmpack download`: random SIGKILLs, and double-kills (two downloaders sharing a directory
killed together), against the loopback Hub, checking after every kill that the directory tells no lie.

An episode fills a fresh directory: a downloader (or two, for a double-kill) starts, is killed at a random
moment after it has planned (while bytes flow, files are verified, renamed, recorded: within the time the
rest of the download takes, and a little past it), and the next one resumes, until one finishes before its
kill comes. After every kill:
- corrupt files: a file in place whose bytes are not the Hub's (target 0);
- false completion records: `.llmpack/complete.json` while some file is missing or wrong (target 0);
- re-fetch for the kill: bytes the Hub served to the killed run(s) that were not kept on disk, i.e. what the
  next run fetches again (target: about one 1 MiB chunk plus what the killed sockets held).
At the end: bytes served / (model size x episodes), and runs that failed other than by the kill (target 0).

Rerun: .venv/bin/python bench/chaos_download.py [--kills 100 --double-kills 20 --seed 1] [--llmpack-args ARGS]
(about three minutes on two busy cores; tests/download/test_chaos.py runs 10 kills and 2 double-kills, in
one stream per file and, with --llmpack-args "--part-size 1Mi --connections 4", in ranged parts)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmpack.downloader import partmap  # noqa: E402
from llmpack.downloader.plan import RemoteFile  # noqa: E402
from llmpack.downloader.safedir import SafeDir  # noqa: E402
from tests.hub.server import HubServer, git_sha1, is_lfs, synthetic_repo  # noqa: E402

SHARDS, SHARD_MIB, RATE_MIB = 3, 4, 4


class Run:
    """A downloader process, and whether it has said it planned (its transfer starts)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc, self.planned, self.lines = proc, threading.Event(), list[str]()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if '"phase": "planned"' in line:
                self.planned.set()


@dataclass
class Report:
    kills: int = 0
    double_kills: int = 0
    mid_transfer: int = 0            # kills that landed while bytes were flowing
    episodes: int = 0
    corrupt_files: int = 0
    false_records: int = 0
    failed_runs: list[str] = field(default_factory=list)   # exits other than 0 or the kill
    refetched: list[int] = field(default_factory=list)     # per kill event
    served: int = 0
    model_bytes: int = 0
    seconds: float = 0.0

    @property
    def ratio(self) -> float:
        return self.served / (self.model_bytes * self.episodes) if self.episodes else 0.0

    def lines(self) -> list[str]:
        worst = max(self.refetched, default=0)
        median = sorted(self.refetched)[len(self.refetched) // 2] if self.refetched else 0
        failed = f" {self.failed_runs[:3]}" if self.failed_runs else ""
        return [
            f"kills: {self.kills} single + {self.double_kills} double ({self.mid_transfer} mid-transfer), "
            f"{self.episodes} directories filled, {self.seconds:.0f} s",
            f"corrupt files: {self.corrupt_files}",
            f"false completion records: {self.false_records}",
            f"failed runs (not killed): {len(self.failed_runs)}{failed}",
            f"bytes served: {self.ratio:.3f} x model per directory",
            f"max re-fetch per kill: {worst / (1 << 20):.2f} MiB (median {median / (1 << 20):.2f} MiB)",
        ]


def _held(target: Path, files: dict[str, bytes]) -> int:
    """Bytes the directory keeps towards the model: files in place, and what partial files hold (their
    length; for one fetched in parts, what its map says each part holds)."""
    total = 0
    for path, data in files.items():
        done, part = target / path, target / ".llmpack" / "partial" / f"{path}.part"
        if done.exists():
            total += len(data)
        elif part.exists():
            total += _in_parts(target, path, data, part.stat().st_size)
    return total


def _in_parts(target: Path, path: str, data: bytes, length: int) -> int:
    sha1, sha256 = git_sha1(data), hashlib.sha256(data).hexdigest()
    remote = RemoteFile(path, len(data), sha256=sha256) if is_lfs(path) else RemoteFile(path, len(data), git_sha1=sha1)
    with SafeDir(target) as root:
        found = partmap.load(root, remote, length)
    if not found:
        return min(length, len(data))
    found.close()
    return sum(found.done)


def _judge(target: Path, files: dict[str, bytes], report: Report) -> bool:
    """Count lies in the directory; True when it is complete."""
    complete = True
    for path, data in files.items():
        done = target / path
        if not done.exists():
            complete = False
        elif done.read_bytes() != data:
            report.corrupt_files += 1
            complete = False
    if (target / ".llmpack" / "complete.json").exists() and not complete:
        report.false_records += 1
    return complete


def chaos(kills: int, double_kills: int, seed: int, work: Path, args: tuple[str, ...] = ()) -> Report:
    rng = random.Random(seed)
    hub = HubServer([synthetic_repo("org/model", shards=SHARDS, shard_size=SHARD_MIB << 20)]).start()
    hub.faults.rate = RATE_MIB << 20  # per connection: the shards arrive in parallel over about a second
    files = hub.repos["org/model"].commits[hub.repos["org/model"].refs["main"]]
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HOME": str(work / "home"), "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_HUB_DISABLE_UPDATE_CHECK": "1", "LLMPACK_PROGRESS_SECONDS": "60", "LLMPACK_RETRY_SECONDS": "0.1"}
    report = Report(model_bytes=sum(len(d) for d in files.values()))
    started = time.monotonic()

    def start(target: Path) -> Run:
        proc = subprocess.Popen([sys.executable, "-m", "llmpack.cli", "download", "org/model", "--local-dir",
                                 str(target), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return Run(proc)

    def settle(run: Run, killed: bool) -> None:
        code = run.proc.wait(120)
        run.reader.join()
        if code not in ((0, -signal.SIGKILL) if killed else (0,)):
            report.failed_runs.append(f"exit {code}: {run.lines[-1:]}")

    try:
        # How long a cold run transfers after it has planned: the kills fall in that window, where bytes flow
        # and files are verified, renamed and recorded (a kill during start-up proves little).
        target = work / "calibrate"
        run = start(target)
        run.planned.wait(120)
        t0 = time.monotonic()
        settle(run, killed=False)
        window = time.monotonic() - t0
        shutil.rmtree(target)
        hub.served.clear()

        todo = ["single"] * kills + ["double"] * double_kills
        rng.shuffle(todo)
        episode, target = 0, work / "ep-0"
        while todo:
            kind = todo[-1]
            before_served, before_held = sum(hub.served.values()), _held(target, files)
            runs = [start(target) for _ in range(2 if kind == "double" else 1)]
            while not any(r.planned.wait(0.01) for r in runs) and all(r.proc.poll() is None for r in runs):
                pass
            # Within what is left to do, a little past it: about one run in ten finishes and ends the episode.
            # At least a quarter of the window: once every byte is held, hashing what earlier runs wrote,
            # the renames and the record are left, and in parts (four connections) the window is short.
            left = 1 - before_held / report.model_bytes
            deadline = time.monotonic() + rng.uniform(0, 1.1 * window * max(left, 0.25))
            while time.monotonic() < deadline and all(r.proc.poll() is None for r in runs):
                time.sleep(0.005)
            finished_first = any(r.proc.poll() == 0 for r in runs)
            for r in runs:
                if r.proc.poll() is None:
                    r.proc.send_signal(signal.SIGKILL)
            for r in runs:
                settle(r, killed=True)
            if not finished_first:
                todo.pop()
                report.kills += kind == "single"
                report.double_kills += kind == "double"
                served = sum(hub.served.values()) - before_served
                report.mid_transfer += served > 0
                report.refetched.append(max(served - (_held(target, files) - before_held), 0))
            if _judge(target, files, report):
                report.episodes += 1
                episode += 1
                shutil.rmtree(target)
                target = work / f"ep-{episode}"
        if target.exists():  # the last directory: finish it unkilled, so served bytes compare with whole models
            settle(start(target), killed=False)
            report.episodes += _judge(target, files, report)
        report.served = sum(hub.served.values())
    finally:
        hub.stop()
    report.seconds = time.monotonic() - started
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--double-kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--llmpack-args", default="", help="options for every `llmpack download`, e.g. "
                        "'--part-size 1Mi --connections 4' (each 4 MiB shard in ranged parts)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmpack-chaos-") as tmp:
        report = chaos(args.kills, args.double_kills, args.seed, Path(tmp), tuple(args.llmpack_args.split()))
    print(f"model: {SHARD_MIB * SHARDS} MiB in {SHARDS} shards + 2 small files, served at "
          f"{RATE_MIB} MiB/s per connection")
    for line in report.lines():
        print("  " + line)
    extra = f" --llmpack-args '{args.llmpack_args}'" if args.llmpack_args else ""
    print(f"rerun: .venv/bin/python bench/chaos_download.py --kills {args.kills} --double-kills {args.double_kills} "
          f"--seed {args.seed}{extra}")


if __name__ == "__main__":
    main()
