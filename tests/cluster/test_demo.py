"""`make demo`, the README's first command: on its own local cluster, every example model reaches Ready."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from llmpack_dev.cluster import LocalCluster

ROOT = Path(__file__).resolve().parents[2]


def test_make_demo_brings_every_example_to_ready_and_cluster_down_cleans_up(tmp_path: Path) -> None:
    state = tmp_path / "demo-cluster"
    bin_dir = Path(os.environ.get("LLMPACK_TESTBIN", ROOT / ".testbin"))
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    try:
        result = subprocess.run([sys.executable, "-m", "llmpack_dev.demo", "--state", str(state), "--bin", str(bin_dir),
                                 "--timeout", "120"], env=env, capture_output=True, text=True, timeout=300,
                                check=False, cwd=ROOT)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        assert "Every example model is Ready." in result.stdout
        assert "make cluster-down" in result.stdout  # it tells the user how to stop
        for name in ("qwen-int4", "devstral-small", "my-oci-model", "qwen-small", "prefilled"):
            assert name in result.stdout
    finally:
        LocalCluster(state, bin_dir).down()
    assert not state.exists()
