"""`make demo`, the README's first command: on its own local cluster, every example model reaches Ready, and
qwen-int4's weights are really downloaded by `llmpack download` from the demo's local Hub, its progress in status."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from llmpack_dev.cluster import LocalCluster

ROOT = Path(__file__).resolve().parents[2]
SHARD = 32 << 20  # --weights 64Mi: two shards


class Watch:
    """Every version of the demo's LLMModels that the API server sent, as `kubectl get -w` shows them."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.seen: list[dict[str, Any]] = []
        self._proc: subprocess.Popen[str] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():  # until the cluster answers and the CRD is installed
            if self.cluster.kubeconfig.exists() and self.cluster.kubectl(
                    "get", "llmmodels", "-n", "demo", check=False).returncode == 0:
                break
            time.sleep(1)
        else:
            return
        self._proc = subprocess.Popen(
            [str(self.cluster.bin_dir / "kubectl"), "--kubeconfig", str(self.cluster.kubeconfig), "get", "llmmodels",
             "-n", "demo", "--watch", "-o", "json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self._proc.stdout is not None
        decoder, buffer = json.JSONDecoder(), ""
        for line in self._proc.stdout:
            buffer += line
            try:
                obj, _ = decoder.raw_decode(buffer.strip())
            except ValueError:
                continue
            buffer = ""
            self.seen.append(obj)

    def stop(self) -> None:
        self._stop.set()
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
        self._thread.join(15)

    def of(self, name: str) -> list[dict[str, Any]]:
        return [obj.get("status") or {} for obj in self.seen if obj["metadata"]["name"] == name]


def test_make_demo_downloads_one_model_for_real_brings_every_example_to_ready_and_cluster_down_cleans_up(
        tmp_path: Path) -> None:
    state = tmp_path / "demo-cluster"
    bin_dir = Path(os.environ.get("LLMPACK_TESTBIN", ROOT / ".testbin"))
    cluster = LocalCluster(state, bin_dir)
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    watch = Watch(cluster)
    try:
        # Small and quick, but paced: the Lease's progress (written every 5 s) is seen mid-way.
        result = subprocess.run([sys.executable, "-m", "llmpack_dev.demo", "--state", str(state), "--bin", str(bin_dir),
                                 "--timeout", "120", "--weights", "64Mi", "--download-seconds", "12"],
                                env=env, capture_output=True, text=True, timeout=300, check=False, cwd=ROOT)
        watch.stop()
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        assert "Every example model is Ready." in result.stdout
        assert "make cluster-down" in result.stdout  # it tells the user how to stop
        for name in ("qwen-int4", "devstral-small", "my-oci-model", "qwen-small", "prefilled"):
            assert name in result.stdout

        statuses = watch.of("qwen-int4")
        midway = [s["download"] for s in statuses
                  if 0 < (s.get("download") or {}).get("bytesDone", 0) < (s.get("download") or {}).get("bytesTotal", 0)]
        assert midway, f"no download progress in status: {statuses}"
        assert all(d["holder"].startswith("qwen-int4-dl-") for d in midway)  # the download Job's pod held the Lease
        assert all(d["rate"] and d["eta"] for d in midway)
        assert statuses[-1]["phase"] == "Ready"
        assert statuses[-1]["modelSize"] == "64.0Mi"  # the real sizing step asked the local Hub

        volume = state / "played" / "volumes" / "demo" / "qwen-int4-model-storage"
        shards = sorted(volume.glob("*.safetensors"))
        assert [p.stat().st_size for p in shards] == [SHARD, SHARD]
        served = re.search(r"The local Hub served (\d+) bytes", result.stdout)
        assert served is not None, result.stdout[-3000:]
        assert int(served.group(1)) >= 2 * SHARD  # every byte came from the Hub, through the real downloader
    finally:
        watch.stop()
        cluster.down()
    assert not state.exists()
