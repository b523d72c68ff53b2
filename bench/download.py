"""Our downloader against `hf download`, side by side on one loopback Hub server holding ~1 GB in 4 shards.

For each: the cold download time, the bytes served when 3 replicas download into one directory at once,
the bytes re-fetched after a SIGKILL half way through a shard, and the warm re-run time.
Rerun: .venv/bin/python bench/download.py [--shard-mib 256 --shards 4]
Targets (issue 6): cold no worse than hf; concurrent = 1.00 x model size; re-fetched <= one chunk (1 MiB);
warm re-run < 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hub.server import HubServer, synthetic_repo  # noqa: E402

BIN = ROOT / ".venv" / "bin"
TOOLS = {
    "llmpack": lambda d: [str(BIN / "llmpack"), "download", "org/model", "--local-dir", str(d)],
    "hf": lambda d: [str(BIN / "hf"), "download", "org/model", "--local-dir", str(d)],
}


def env(hub: HubServer, home: Path) -> dict[str, str]:
    return {**os.environ, "HF_ENDPOINT": hub.url, "HF_HOME": str(home), "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_UPDATE_CHECK": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def timed(argv: list[str], environ: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=environ, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--shard-mib", type=int, default=256)
    args = parser.parse_args()
    hub = HubServer([synthetic_repo("org/model", shards=args.shards, shard_size=args.shard_mib << 20)]).start()
    files = hub.repos["org/model"].commits[hub.repos["org/model"].refs["main"]]
    total = sum(len(b) for b in files.values())
    shard = sorted(p for p in files if p.endswith(".safetensors"))[0]
    rows: dict[str, dict[str, str]] = {name: {} for name in TOOLS}
    with tempfile.TemporaryDirectory(prefix="llmpack-bench-") as tmp:
        work = Path(tmp)
        e = env(hub, work / "home")
        for name, argv in TOOLS.items():  # cold and warm
            target = work / f"{name}-cold"
            rows[name]["cold"] = f"{timed(argv(target), e):.2f} s"
            rows[name]["warm"] = f"{statistics.median(timed(argv(target), e) for _ in range(5)):.3f} s"
            shutil.rmtree(target)
        for name, argv in TOOLS.items():  # three replicas into one directory at once
            hub.served.clear()
            target = work / f"{name}-shared"
            procs = [subprocess.Popen(argv(target), env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for _ in range(3)]
            codes = [p.wait(600) for p in procs]
            served = sum(hub.served.values())
            rows[name]["3 replicas"] = f"{served / total:.2f} x size" + ("" if codes == [0, 0, 0] else f" {codes}")
            shutil.rmtree(target)
        for name, argv in TOOLS.items():  # SIGKILL at half a shard, then run again
            hub.served.clear()
            hub.faults.rate = 64 << 20
            target = work / f"{name}-killed"
            proc = subprocess.Popen([*argv(target), "--include", shard], env=e, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            while hub.served[f"org/model/{shard}"] < len(files[shard]) // 2 and proc.poll() is None:
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            hub.faults.rate = None
            subprocess.run([*argv(target), "--include", shard], env=e, check=True, capture_output=True, timeout=600)
            refetched = hub.served[f"org/model/{shard}"] - len(files[shard])
            rows[name]["re-fetched after SIGKILL at 50%"] = f"{refetched / (1 << 20):.1f} MiB"
            shutil.rmtree(target)
    hub.stop()
    print(f"model: {len(files)} files, {total / (1 << 30):.2f} GiB ({args.shards} shards of {args.shard_mib} MiB)")
    for name, row in rows.items():
        print(f"  {name:8} " + "  ".join(f"{k}: {v}" for k, v in row.items()))
    print(f"rerun: .venv/bin/python bench/download.py --shards {args.shards} --shard-mib {args.shard_mib}")


if __name__ == "__main__":
    main()
