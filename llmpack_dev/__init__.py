"""Development only, never installed with llmpack: a real, local Kubernetes control plane (etcd, kube-*, kwok,
on 127.0.0.1) for the tests, the benchmarks, `make cluster-up` and `make demo`. Importable from the
repository root (pytest's pythonpath, `python -m llmpack_dev.cluster`)."""
