"""Third-party CRDs for the test cluster, taken from their projects' Go modules (the proxy serves them;
nothing is copied into this repository), so every object we apply is checked by the real schema."""

from __future__ import annotations

from pathlib import Path

from llmpack.testing.gomod import module_dir

INFERENCE_EXTENSION = "sigs.k8s.io/gateway-api-inference-extension@v1.5.0"


def inference_extension_crds() -> list[Path]:
    """InferencePool (inference.networking.k8s.io/v1) and the x-k8s objectives, rewrites and imports."""
    return sorted((module_dir(INFERENCE_EXTENSION) / "config" / "crd" / "bases").glob("*.yaml"))
