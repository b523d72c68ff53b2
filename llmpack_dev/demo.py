"""`make demo`: the main job on a laptop. Starts the local control plane (or reuses it), installs the CRD and the
admission policies, runs the operator, applies the examples and shows them moving through their phases to Ready."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

from llmpack.manifests import load_models
from llmpack_dev.cluster import ClusterError, LocalCluster, free_port, install_admission, wait_for_webhook
from llmpack_dev.nodes import storage_class

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NAMESPACE = "demo"
PHASE_STYLE = {"Ready": "green", "Downloading": "cyan", "Starting": "yellow", "Pending": "white",
               "Degraded": "magenta", "Error": "red"}


def confirm_foreign_cluster(console: Console, assume_yes: bool) -> bool:
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig:
        return True
    console.print(f"KUBECONFIG is set ({kubeconfig}). The demo runs on its own local cluster and never touches it.")
    if assume_yes or not sys.stdin.isatty():
        return True
    return console.input("Continue with the local cluster? [y/N] ").strip().lower() in ("y", "yes")


def table(cluster: LocalCluster) -> tuple[Table, bool]:
    out = cluster.kubectl("get", "llmmodels", "-n", NAMESPACE, "-o", "yaml", check=False)
    items = (yaml.safe_load(out.stdout) or {}).get("items", []) if out.returncode == 0 else []
    grid = Table(title=f"kubectl get llmmodel -n {NAMESPACE}", expand=False)
    for column in ("NAME", "PHASE", "MODEL", "READY", "WHY"):
        grid.add_column(column)
    for item in items:
        st = item.get("status") or {}
        phase = st.get("phase", "-")
        reps = st.get("replicas") or {}
        why = next((c.get("message", "") for c in st.get("conditions", []) if c["type"] == "Ready"), "")
        grid.add_row(item["metadata"]["name"], f"[{PHASE_STYLE.get(phase, 'white')}]{phase}[/]",
                     item["spec"]["model"]["name"], f"{reps.get('ready', 0)}/{reps.get('desired', '?')}", why)
    done = bool(items) and all((i.get("status") or {}).get("phase") == "Ready" for i in items)
    return grid, done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--state", type=Path, default=ROOT / ".testcluster")
    parser.add_argument("--bin", type=Path, default=ROOT / ".testbin")
    parser.add_argument("--yes", action="store_true", help="do not ask about an existing KUBECONFIG")
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args(argv)
    console = Console()
    if not confirm_foreign_cluster(console, args.yes):
        console.print("Nothing done.")
        return 1
    cluster = LocalCluster(args.state.resolve(), args.bin.resolve())
    if cluster.running():
        console.print(f"Reusing the local cluster in {args.state}.")
    else:
        console.print("Starting a local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)...")
        try:
            cluster.up()
        except ClusterError as exc:
            console.print(f"[red]Could not start the cluster:[/] {exc}")
            return 1
        install_admission(cluster)  # the CRD and the admission policies: `llmpack crd` and `llmpack policies`
        cluster.start_process("operator", [
            sys.executable, "-m", "llmpack.cli", "run", "--kubeconfig", str(cluster.kubeconfig_for("operator")),
            "--webhook-port", str(free_port()), "--webhook-listen", "127.0.0.1",
            "--webhook-cert-dir", str(cluster.state / "webhook")])
        wait_for_webhook(cluster)
    # What the examples expect to exist: a namespace, the gated model's token, the pre-filled storage class.
    prefilled = storage_class() | {"metadata": {"name": "prefilled-models"}}
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hf-token", "namespace": NAMESPACE},
         "stringData": {"HF_TOKEN": "hf_demo_not_a_real_token"}},
        prefilled,
    ]))
    examples = sorted(EXAMPLES.glob("*.yaml"))
    for model in load_models(examples):
        console.print(f"  applying {model.name}: {model.spec.model.name}")
    cluster.kubectl("apply", "-n", NAMESPACE, *[a for p in examples for a in ("-f", str(p))])

    deadline = time.monotonic() + args.timeout
    with Live(console=console, refresh_per_second=4) as live:
        while True:
            grid, done = table(cluster)
            live.update(grid)
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    kubeconfig = cluster.kubeconfig
    console.print("[green]Every example model is Ready.[/]" if done else "[yellow]Not every model is Ready yet.[/]")
    console.print(f"""
Look around (kwok plays the GPU nodes and pods; no weights are really downloaded):
  export KUBECONFIG={kubeconfig}
  {args.bin}/kubectl get llmmodel -n {NAMESPACE} -o wide
  {args.bin}/kubectl describe llmmodel qwen-int4 -n {NAMESPACE}
  {args.bin}/kubectl get pvc,deploy,pods -n {NAMESPACE}
  {args.bin}/kubectl patch llmmodel qwen-int4 -n {NAMESPACE} --type=merge -p '{{"spec":{{"serving":{{"replicas":3}}}}}}'
  .venv/bin/llmpack render -f examples/qwen-int4-pvc.yaml
  {args.bin}/kubectl apply -n {NAMESPACE} -f examples/broken/oci-without-image.yaml   # refused at the door
Operator log: {args.state}/logs/operator.log
Stop everything: make cluster-down""")
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
