#!/usr/bin/env bash
# Build the test control plane into $1 (default ../.testbin) from the modules pinned in go.mod.
# Skips the build when the stamp file says the binaries were built from this very go.mod/go.sum.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:-$here/../.testbin}" && cd "${1:-$here/../.testbin}" && pwd)

KUBE_VERSION=v1.36.3
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.22.0
ETCD_VERSION=$(cd "$here" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)

stamp="$out/.stamp"
want="kube=$KUBE_VERSION etcd=$ETCD_VERSION kwok=$KWOK_VERSION helm=$HELM_VERSION mod=$(cat "$here/go.mod" "$here/go.sum" "$0" | sha256sum | cut -c1-16)"
bins=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && for b in "${bins[@]}"; do [[ -x "$out/$b" ]] || exit 1; done; then
  echo "testbin: up to date in $out ($want)"
  exit 0
fi

export CGO_ENABLED=0 GOFLAGS=-mod=mod
minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION \
 -X k8s.io/client-go/pkg/version.gitMajor=1 \
 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
start=$(date +%s)
cd "$here"
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd; do
  echo "testbin: building $b"
  go build -trimpath -ldflags "$ldflags" -o "$out/$b" "./cmd/$b"
done
echo "testbin: building kwok $KWOK_VERSION"
GOBIN="$out" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
echo "testbin: building helm $HELM_VERSION"
GOBIN="$out" go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
echo "$want" > "$stamp"
echo "testbin: built in $(( $(date +%s) - start ))s into $out"
