"""The `llmpack` command: render manifests, print the CRD and the admission policies, run the operator, download
models, serve keys."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from llmpack import __version__

# Commands import what they need when they run: `llmpack download` starts in every model pod, and should
# not pay for the API models, the renderer or the Kubernetes client it never uses.
EXIT_USAGE = 2


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


def dump_yaml(objects: Sequence[object]) -> str:
    import yaml

    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False)


def cmd_render(args: argparse.Namespace) -> int:
    from llmpack.config import load_config
    from llmpack.manifests import load_models, load_passthroughs
    from llmpack.render import offline_facts, passthrough_plan, plan, render

    config = load_config(args.values)
    models = load_models(args.filename)
    passthroughs = load_passthroughs(args.filename)
    if not models and not passthroughs:
        raise UserError("no LLMModel or PassthroughModel (apiVersion llm.nebari.dev/v1alpha1) in "
                        f"{', '.join(map(str, args.filename))}")
    # The steady state: a model downloading through a Job has 0 replicas only until its weights are in.
    objects = []
    for model in models:
        objects += render(model, config, weights_ready=True)
        if args.routing:  # the operator's own plan, for a Ready model in a cluster with every CRD
            objects += plan(model, config, offline_facts()).objects
    for passthrough in passthroughs:  # nothing but routing: its whole plan, its credential Secret assumed present
        objects += passthrough_plan.plan(passthrough, config, offline_facts()).objects
    sys.stdout.write(dump_yaml(objects))
    return 0


def cmd_crd(args: argparse.Namespace) -> int:
    from llmpack.api import crd, passthrough_crd

    sys.stdout.write(dump_yaml([(passthrough_crd if args.kind == "passthroughmodel" else crd).crd()]))
    return 0


def cmd_policies(args: argparse.Namespace) -> int:
    from llmpack.admission.policies import objects
    from llmpack.admission.table import Settings
    from llmpack.config import load_config

    config = load_config(args.values)
    sys.stdout.write(dump_yaml(objects(Settings(default_access_mode=config.access_mode.value))))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import os
    import tempfile

    from llmpack.config import load_config
    from llmpack.operator import logs
    from llmpack.operator.runner import WebhookOptions, run

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = str(args.kubeconfig)
    config = load_config(args.values)
    namespaces = args.namespace or list(config.watch_namespaces)
    logs.configure(verbose=args.verbose, fmt=args.log_format)
    from llmpack.operator.health import address

    metrics = args.metrics or (f"http://0.0.0.0:{config.metrics_port}/metrics" if config.metrics_port else None)
    try:
        if args.health:
            address(args.health)
        if metrics:
            address(metrics, "--metrics", "http://0.0.0.0:8081/metrics")
    except ValueError as exc:
        raise UserError(str(exc)) from None
    webhook = None
    if args.webhook_port:
        # Only then: the webhook's certificates import `cryptography` (~10 MB of the operator's memory).
        from llmpack.admission.webhook import Endpoint

        service = None
        if args.webhook_service:
            where, _, port = args.webhook_service.partition(":")
            namespace, _, name = where.partition("/")
            if not (namespace and name and port.isdigit()):
                raise UserError("--webhook-service must look like NAMESPACE/NAME:PORT, "
                                "e.g. llmpack/llmpack-webhook:443")
            service = (namespace, name, int(port))
            hosts = (f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local")
        else:
            hosts = ("127.0.0.1", "localhost")
        endpoint = Endpoint(url=args.webhook_url or f"https://127.0.0.1:{args.webhook_port}", service=service)
        cert_dir = args.webhook_cert_dir or Path(tempfile.mkdtemp(prefix="llmpack-webhook-"))
        webhook = WebhookOptions(args.webhook_listen, args.webhook_port, endpoint, cert_dir, hosts)
    run(config, namespaces, workers=args.workers, health=args.health, webhook=webhook, metrics=metrics)
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from llmpack.downloader.download import run
    from llmpack.downloader.errors import DownloadError, UsageError

    try:
        if args.size_only:
            _size_only(args)
        elif args.local_dir is None:
            raise UsageError("--local-dir DIR is required (unless --size-only)")
        else:
            run(args.model, args.local_dir, args.revision, args.include or [], args.exclude or [], args.verify,
                args.connections, args.part_size)
    except DownloadError as exc:
        # One line, whatever the message holds (a server's words may carry newlines): the error is the
        # only stderr line that is not a JSON object.
        print(f"llmpack download: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.exit_code
    return 0


def _size_only(args: argparse.Namespace) -> None:
    from llmpack.downloader.download import say
    from llmpack.downloader.sizing import lease_reporter, run_size

    run_size(args.model, args.revision, tuple(args.include or ()), tuple(args.exclude or ()), say, lease_reporter())


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _part_size(text: str) -> int:
    """A part size in bytes, as a quantity (16Mi, 64M, 1048576): 0, or at least 1Mi."""
    from llmpack.quantity import QuantityError, parse_quantity

    try:
        value = parse_quantity(text)
    except QuantityError:
        value = None
    if value is None or value != int(value) or not (value == 0 or value >= 1 << 20):
        raise argparse.ArgumentTypeError(f"{text!r} is not a part size: 0 (no parts), or at least 1Mi (e.g. 16Mi)")
    return int(value)


def cmd_key_manager(args: argparse.Namespace) -> int:
    import os

    from llmpack.keymanager.server import serve
    from llmpack.keymanager.settings import load_settings

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = str(args.kubeconfig)
    settings = load_settings(args.values)
    serve(settings, host=args.listen, port=args.port, verbose=args.verbose, metrics_port=args.metrics_port)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import httpx2
    from lightkube import Client, ConfigError, KubeConfig

    from llmpack.show.live import Problem, show

    try:
        config = KubeConfig.from_file(str(args.kubeconfig)) if args.kubeconfig else KubeConfig.from_env()
        client = Client(config)
    except ConfigError as exc:
        raise UserError(f"no cluster to ask: {exc}; set KUBECONFIG or pass --kubeconfig") from None
    namespace = None if args.all_namespaces else args.namespace or client.namespace
    try:
        return show(client, namespace, watch=args.watch)
    except Problem as exc:
        raise UserError(str(exc)) from None
    except httpx2.TransportError as exc:
        raise UserError(f"cannot reach the API server {client.config.cluster.server}: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    from llmpack.downloader import CONNECTIONS, PART_SIZE
    from llmpack.quantity import format_bytes

    parser = argparse.ArgumentParser(
        prog="llmpack",
        description="Serve large language models on Kubernetes with vLLM: the weights are fetched onto "
        "storage once, GPUs start only when they are there, and `kubectl get llmmodel` tells the truth.",
        epilog="Start with `llmpack render -f examples/qwen-int4-pvc.yaml` to see what a model becomes.",
    )
    parser.add_argument("--version", action="version", version=f"llmpack {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "render",
        help="print the Kubernetes objects the operator creates for LLMModel and PassthroughModel manifests",
        description="Print, as multi-document YAML, every object the operator would create for each "
        "LLMModel in the files (other kinds are skipped), as they are once the weights are in: until its "
        "download Job succeeds, a model on a PVC runs with 0 replicas. Nothing touches a cluster.",
    )
    p.add_argument("-f", "--filename", type=Path, action="append", required=True, metavar="FILE",
                   help="a manifest file ('-' for stdin); repeat for several")
    p.add_argument("--values", type=Path, metavar="VALUES.yaml",
                   help="operator settings with the Helm chart's keys, e.g. defaults.storage.storageClassName")
    p.add_argument("--routing", action="store_true",
                   help="also print the operator's routing plan for a model with a Ready replica in a cluster with "
                   "every gateway CRD: InferencePool, endpoint picker, API-key objects, SecurityPolicies, "
                   "AIGatewayRoutes (v1alpha1, which every AI Gateway release serves), policies before their "
                   "routes (the internal side only with auth.oidc.issuer set), and a PodMonitor with "
                   "serving.monitoring.enabled")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser(
        "run",
        help="run the operator against the current cluster",
        description="Watch LLMModels (in every namespace, or those given) and keep their storage, "
        "downloader, vLLM replicas, routes and policies as the spec says, reporting phase and conditions in "
        "status. At start, first installs the LLMModel and PassthroughModel CRDs, or replaces them when they are "
        "not exactly this release's (crds.manage=false / LLMPACK_MANAGE_CRDS=false: only check them). Uses "
        "$KUBECONFIG, ~/.kube/config, or the in-cluster service account.",
        epilog="Settings (images, storage defaults, routing.baseDomain, gateways, auth.oidc.issuer, ...) come from "
        "--values and LLMPACK_* environment variables; docs/operations.md lists every one.",
    )
    p.add_argument("-n", "--namespace", action="append", metavar="NS",
                   help="watch only this namespace; repeat for several (default: all, or watchNamespaces)")
    p.add_argument("--values", type=Path, metavar="VALUES.yaml", help="operator settings (Helm chart keys)")
    p.add_argument("--kubeconfig", type=Path, help="kubeconfig file (default: $KUBECONFIG or in-cluster)")
    p.add_argument("--workers", type=int, default=8, help="models reconciled at once (default 8)")
    p.add_argument("--health", metavar="URL", help="serve liveness here, e.g. http://0.0.0.0:8080/healthz")
    p.add_argument("--metrics", metavar="URL", help="serve Prometheus metrics here, e.g. http://0.0.0.0:8081/metrics "
                   "(default: port metrics.port / LLMPACK_METRICS_PORT, off when 0)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="debug logging: every API request, every retry (INFO: one line per phase change)")
    p.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="json: one object per line (time, level, logger, message, model) for log pipelines")
    hook = p.add_argument_group(
        "admission webhook (off unless a port is given): warnings that need other objects, added to kubectl apply's; "
        "failurePolicy Ignore, so while the operator is down nothing is blocked and those warnings are missing. "
        "Every denial and every other warning is the API server's own: `llmpack crd` and `llmpack policies`")
    hook.add_argument("--webhook-port", type=int, metavar="PORT", help="serve the validating webhook on this port")
    hook.add_argument("--webhook-listen", default="0.0.0.0", metavar="ADDR", help="listen address (default 0.0.0.0)")
    hook.add_argument("--webhook-url", metavar="URL",
                      help="base URL the API server calls (default https://127.0.0.1:PORT, for local runs)")
    hook.add_argument("--webhook-service", metavar="NS/NAME:PORT",
                      help="in-cluster: the Service in front of the webhook, instead of a URL")
    hook.add_argument("--webhook-cert-dir", type=Path, metavar="DIR",
                      help="ca.crt, tls.crt, tls.key to serve with (e.g. a cert-manager Secret); "
                           "made and self-signed here when absent (default: a new temporary directory)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "download",
        help="download a Hugging Face model into a directory (the model-downloader init container)",
        description="Takes the arguments of `hf download MODEL --local-dir DIR [--revision R]` (what the LLM Serving "
        "Pack's init container runs) and fills DIR so that several downloaders sharing it fetch each byte once, a "
        "killed one resumes, and every file is verified (sha256 or git blob sha1) before it is moved into place; a "
        "complete DIR is recognised in well under a second. Files already in DIR without llmpack's completion record "
        "(e.g. left by `hf download`) are hashed against the Hub's hashes (phase 'verifying', LLMPACK_VERIFY_THREADS "
        "at once) and kept when they match; only the rest is fetched. Every name the Hub lists is checked before a "
        "byte is written, and no symbolic link inside DIR is ever followed. HF_TOKEN, HF_ENDPOINT and the other HF_* "
        "variables apply. Progress goes to stderr: a bar on a terminal, else one JSON object per line every few "
        "seconds; a failure adds exactly one line starting 'llmpack download:'.",
        epilog="Exit codes: 0 complete; 2 not a Hub repo id, or HF_ENDPOINT not an http(s) URL; 3 "
        "gated/unauthorized; 4 repo not found; 5 revision not found; 6 not enough space (checked and reserved "
        "before the first byte, or the volume filled up); 7 network (Hub unreachable, or no progress through "
        "every retry); 8 verification failed twice; 9 the Hub listed "
        "an unsafe file name (../x, /etc/x, NUL, backslash) or answered nonsense: nothing written; "
        "10 DIR cannot be written (read-only, permission denied, a symbolic link planted in it); 11 another "
        "downloader took the lock over (this one was paused too long): stopped writing.",
    )
    p.add_argument("model", help="Hugging Face repo id, e.g. Qwen/Qwen3-8B")
    p.add_argument("--local-dir", type=Path, metavar="DIR", help="where the files go (required unless --size-only)")
    p.add_argument("--size-only", action="store_true",
                   help="fetch nothing: resolve the revision, add up the sizes of the files a download would take "
                   "and report them (a JSON line; on the Lease named by LLMPACK_LEASE_NAME for the operator). A Hub "
                   "out of reach is retried until it answers")
    p.add_argument("--revision", help="branch, tag or commit (default main)")
    p.add_argument("--include", action="extend", nargs="+", metavar="PATTERN", help="only files matching")
    p.add_argument("--exclude", action="extend", nargs="+", metavar="PATTERN", help="skip files matching")
    p.add_argument("--verify", action="store_true", help="re-hash every file even if the directory is complete")
    p.add_argument("--connections", "--max-workers", dest="connections", type=_count, default=CONNECTIONS,
                   metavar="N", help=f"connections at once, over all files (default {CONNECTIONS}; --max-workers, "
                   "hf download's name, is the same)")
    p.add_argument("--part-size", type=_part_size, default=PART_SIZE, metavar="SIZE",
                   help=f"a file larger than this is fetched in ranged parts of this size over several connections "
                   f"at once, each part resumed on its own (default {format_bytes(PART_SIZE)}; 0: one stream per file)")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser(
        "key-manager",
        help="serve the key manager: users get API keys for the models they may use (OIDC sign-in)",
        description="Serve the key manager's HTTP API (compatible with the LLM Serving Pack's): GET /api/me, "
        "/api/models, /api/keys; POST /api/keys; DELETE /api/keys/NS/MODEL/CLIENT_ID. Every /api call needs an "
        "OIDC bearer token from auth.oidc.issuer; keys go into each model's <m>-api-keys Secret, where Envoy "
        "Gateway reads them. /healthz is liveness, /readyz readiness, /docs the OpenAPI page.",
        epilog="Settings: auth.oidc.* and watchNamespaces as for `llmpack run`, plus keyManager.* (admin groups, "
        "key limit, expiry, sweep interval, grace period) from --values and LLMPACK_KEY_MANAGER_* variables; "
        "docs/key-manager.md lists every one.",
    )
    p.add_argument("--values", type=Path, metavar="VALUES.yaml", help="settings with the Helm chart's keys")
    p.add_argument("--kubeconfig", type=Path, help="kubeconfig file (default: $KUBECONFIG or in-cluster)")
    p.add_argument("--listen", default="0.0.0.0", metavar="ADDR", help="listen address (default 0.0.0.0)")
    p.add_argument("--port", type=int, default=8080, help="listen port (default 8080)")
    p.add_argument("--metrics-port", type=int, default=0, metavar="PORT",
                   help="serve Prometheus metrics on this port's /metrics, apart from the API (default 0: off)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging and an access log")
    p.set_defaults(func=cmd_key_manager)

    p = sub.add_parser(
        "status",
        help="show the models: phase, ready/desired replicas, and download progress with rate and time left",
        description="One line per LLMModel, from its status alone (anyone who may get, list and watch LLMModels "
        "can run it): phase, ready/desired replicas, the Ready condition's message when not Ready, and while the "
        "weights download a bar with bytes, rate and time left. On a terminal the lines are aligned and, with "
        "--watch, redrawn in place; otherwise one plain line per model (key=value), and with --watch a new line "
        "whenever a model's line changes.",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("-n", "--namespace", metavar="NS", help="the models of this namespace (default: the "
                       "kubeconfig context's)")
    where.add_argument("-A", "--all-namespaces", action="store_true", help="the models of every namespace")
    p.add_argument("-w", "--watch", action="store_true", help="keep showing changes until interrupted (Ctrl-C)")
    p.add_argument("--kubeconfig", type=Path, help="kubeconfig file (default: $KUBECONFIG or in-cluster)")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("crd", help="print the LLMModel (or PassthroughModel) CustomResourceDefinition",
                       description="Print the CRD for llmmodels.llm.nebari.dev, with the validation rules that refuse "
                       "bad models (or passthroughmodels.llm.nebari.dev with --kind passthroughmodel); apply it with "
                       "kubectl apply --server-side -f -.")
    p.add_argument("--kind", choices=("llmmodel", "passthroughmodel"), default="llmmodel",
                   help="which of the two CRDs (default llmmodel)")
    p.set_defaults(func=cmd_crd)

    p = sub.add_parser(
        "policies",
        help="print the LLMModel admission policies (what kubectl apply warns about, and refuses beyond the CRD)",
        description="Print the ValidatingAdmissionPolicies and their bindings that the API server evaluates for "
        "every LLMModel, without the operator: the warnings (emptyDir with preload, an OCI image by tag, ...) and "
        "the denials the CRD cannot hold. The Helm chart ships the same; for a local run, apply them with "
        "`llmpack policies | kubectl apply --server-side -f -` next to `llmpack crd`.",
        epilog="Kubernetes 1.30 or later. The operator's settings they read (defaults.storage.accessMode) come from "
        "--values and LLMPACK_* variables, as for `llmpack run`.",
    )
    p.add_argument("--values", type=Path, metavar="VALUES.yaml", help="operator settings (Helm chart keys)")
    p.set_defaults(func=cmd_policies)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if not _users_to_fix(exc):
            raise
        print(f"llmpack {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _users_to_fix(exc: Exception) -> bool:
    """A bad manifest, bad settings or a bad argument: one line and exit 2, never a traceback."""
    from llmpack.config import ConfigError
    from llmpack.manifests import ManifestError

    return isinstance(exc, ManifestError | ConfigError | UserError)


if __name__ == "__main__":
    sys.exit(main())
