"""`make demo`: the main job on a laptop. Starts the local control plane (or reuses it), installs the CRD and the
admission policies, runs the operator, applies the examples and shows them moving through their phases to Ready.

kwok plays the pods. One model, qwen-int4, is really downloaded: its sizing and download Jobs' pods run the real
`llmpack download` here (played.py), against a Hub on 127.0.0.1 serving generated weights at a pace that makes
the download take --download-seconds (demo_hub.py), so the table shows its bytes, rate and time left."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

from llmpack.manifests import load_models
from llmpack.quantity import format_bytes, parse_quantity
from llmpack.show.lines import bar, eta, row
from llmpack_dev.cluster import ClusterError, LocalCluster, free_port, install_admission, wait_for_webhook
from llmpack_dev.demo_hub import Weights, start_hub
from llmpack_dev.nodes import storage_class
from llmpack_dev.played import JobPlayer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NAMESPACE = "demo"
DOWNLOADED = "qwen-int4"  # the example whose weights the real downloader fetches from the local Hub
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
    for column in ("NAME", "PHASE", "MODEL", "READY", "DOWNLOAD / WHY"):
        grid.add_column(column)
    for item in items:
        st = item.get("status") or {}
        phase = st.get("phase", "-")
        reps = st.get("replicas") or {}
        why = next((c.get("message", "") for c in st.get("conditions", []) if c["type"] == "Ready"), "")
        grid.add_row(item["metadata"]["name"], f"[{PHASE_STYLE.get(phase, 'white')}]{phase}[/]",
                     item["spec"]["model"]["name"], f"{reps.get('ready', 0)}/{reps.get('desired', '?')}",
                     progress(item) or why)
    done = bool(items) and all((i.get("status") or {}).get("phase") == "Ready" for i in items)
    return grid, done


def progress(item: dict[str, object]) -> str | None:
    """A download's bar, bytes, rate and time left, from status alone (as `llmpack status` shows them)."""
    r = row(item)
    if not r.downloading:
        return None
    done = format_bytes(r.done) if r.done is not None else "?"
    size = f"{done}/{format_bytes(r.total)}" if r.total is not None else done
    facts = [size, r.rate, f"ETA {eta(r.eta)}" if r.eta else None]
    percent = f"{r.percent}%" if r.percent is not None else "?%"
    return f"[cyan]{bar(r.percent or 0, 16)}[/] {percent:>4}\n" + "  ".join(f for f in facts if f)


def _size(text: str) -> int:
    try:
        size = int(parse_quantity(text))
    except ValueError:
        size = 0
    if size <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 256Mi or 1Gi")
    return size


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # as Ctrl-C does: the `finally` ends the downloader and the Hub


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--state", type=Path, default=ROOT / ".testcluster", help="the cluster's state directory")
    parser.add_argument("--bin", type=Path, default=ROOT / ".testbin", help="where `make testbin` put the binaries")
    parser.add_argument("--yes", action="store_true", help="do not ask about an existing KUBECONFIG")
    parser.add_argument("--timeout", type=float, default=180, metavar="S",
                        help="give up waiting for every model to be Ready after this long (default 180)")
    parser.add_argument("--download-seconds", type=float, default=Weights.seconds, metavar="S",
                        help=f"how long {DOWNLOADED}'s real download takes: the local Hub paces its connections to "
                        f"that (default {Weights.seconds:.0f}; 0: as fast as this machine goes)")
    parser.add_argument("--weights", type=_size, default=Weights.size, metavar="SIZE",
                        help=f"how much the local Hub's generated weights for {DOWNLOADED} take, rounded up to "
                        f"whole 16Mi parts (default {format_bytes(Weights.size)})")
    args = parser.parse_args(argv)
    console = Console()
    if not confirm_foreign_cluster(console, args.yes):
        console.print("Nothing done.")
        return 1
    held = f"{NAMESPACE}/{DOWNLOADED}"
    cluster = LocalCluster(args.state.resolve(), args.bin.resolve(), held=(held,))
    if cluster.running():
        console.print(f"Reusing the local cluster in {args.state}.")
        cluster.hold_job_pods(held)  # a cluster from `make cluster-up` lets kwok finish every Job pod
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
    models = load_models(examples)
    repo_id = next(m.spec.model.name for m in models if m.name == DOWNLOADED)
    weights = Weights(args.weights, args.download_seconds)
    hub = start_hub(repo_id, cluster.state / "hub", weights)
    player = JobPlayer(cluster, NAMESPACE, DOWNLOADED, hub.url, say=lambda line: console.print(f"  [dim]{line}[/]"))
    for stop in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, _stop_on_signal)
    kubeconfig = cluster.kubeconfig
    try:
        console.print(f"A local Hub on {hub.url} serves {repo_id} ({format_bytes(weights.total())} of "
                      f"generated weights); {DOWNLOADED}'s Jobs run the real `llmpack download` against it.\n"
                      f"Watch from another terminal: .venv/bin/llmpack status -n {NAMESPACE} --watch "
                      f"--kubeconfig {kubeconfig}")
        for model in models:
            console.print(f"  applying {model.name}: {model.spec.model.name}")
        cluster.kubectl("apply", "-n", NAMESPACE, *[a for p in examples for a in ("-f", str(p))])
        deadline = time.monotonic() + args.timeout
        with Live(console=console, refresh_per_second=4) as live:
            while True:
                player.tick()
                grid, done = table(cluster)
                live.update(grid)
                if done or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
    except KeyboardInterrupt:
        console.print(f"Stopped: the downloader and the local Hub are gone. The cluster still runs: `make demo` again "
                      f"resumes {DOWNLOADED}'s download, `make cluster-down` stops everything.")
        return 130
    finally:
        player.stop()
        hub.stop()
    served = sum(n for key, n in hub.served.items() if key.startswith(f"{repo_id}/"))
    console.print(f"The local Hub served {served} bytes ({format_bytes(served)}) of {repo_id} to `llmpack download`.")
    console.print("[green]Every example model is Ready.[/]" if done else "[yellow]Not every model is Ready yet.[/]")
    console.print(f"""
Look around (kwok plays the GPU nodes and the vLLM pods; {DOWNLOADED}'s weights were really downloaded, into
{player.volumes}):
  export KUBECONFIG={kubeconfig}
  {args.bin}/kubectl get llmmodel -n {NAMESPACE} -o wide
  .venv/bin/llmpack status -n {NAMESPACE}
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
