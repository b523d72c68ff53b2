"""The `llmpack` command: render manifests, print the CRD, run the operator, download models."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from llmpack import __version__
from llmpack.api.crd import crd
from llmpack.config import ConfigError, load_config
from llmpack.manifests import ManifestError, load_models
from llmpack.render import render

EXIT_USAGE = 2


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


def dump_yaml(objects: Sequence[object]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False)


def cmd_render(args: argparse.Namespace) -> int:
    config = load_config(args.values)
    models = load_models(args.filename)
    if not models:
        raise UserError(f"no LLMModel (apiVersion llm.nebari.dev/v1alpha1) in {', '.join(map(str, args.filename))}")
    sys.stdout.write(dump_yaml([obj for model in models for obj in render(model, config)]))
    return 0


def cmd_crd(args: argparse.Namespace) -> int:
    sys.stdout.write(dump_yaml([crd()]))
    return 0


def build_parser() -> argparse.ArgumentParser:
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
        help="print the Kubernetes objects the operator creates for LLMModel manifests",
        description="Print, as multi-document YAML, every object the operator would create for each "
        "LLMModel in the files (other kinds are skipped). Nothing touches a cluster.",
    )
    p.add_argument("-f", "--filename", type=Path, action="append", required=True, metavar="FILE",
                   help="a manifest file ('-' for stdin); repeat for several")
    p.add_argument("--values", type=Path, metavar="VALUES.yaml",
                   help="operator settings with the Helm chart's keys, e.g. defaults.storage.storageClassName")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("crd", help="print the LLMModel CustomResourceDefinition",
                       description="Print the CRD for llmmodels.llm.nebari.dev; apply it with kubectl apply -f -.")
    p.set_defaults(func=cmd_crd)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ManifestError, ConfigError, UserError) as exc:
        print(f"llmpack {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
