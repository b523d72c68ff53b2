"""A real, local Kubernetes control plane for tests and the demo (etcd, kube-*, kwok), on 127.0.0.1."""
