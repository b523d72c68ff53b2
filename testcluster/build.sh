#!/usr/bin/env bash
# Build the test control plane into $1 (default ../.testbin) from the modules pinned in go.mod, and egctl
# (Envoy Gateway's CLI, for tests/translate) and Prometheus (for the dashboard's test) each from its own module,
# egctl/ and prometheus/ (their dependency graphs are large and apart from the others': kept out of go.mod, so
# none moves another's versions).
# Each binary has its own stamp (.stamps/<name>): the exact build command and a hash of what it reads from
# this directory. A binary is rebuilt only when its stamp differs, so changing one binary's flags rebuilds
# that binary alone. .stamp is written once every binary is in place (others wait for it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:-$here/../.testbin}" && cd "${1:-$here/../.testbin}" && pwd)

KUBE_VERSION=v1.36.3
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.22.0
ETCD_VERSION=$(cd "$here" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
# egctl's module is only ever read: every module it needs is hashed in egctl/go.sum (docs/development.md says
# how that file was made), so no build consults the checksum database.
EGCTL_VERSION=$(GOFLAGS=-mod=readonly go -C "$here/egctl" list -m -f '{{.Version}}' github.com/envoyproxy/gateway)
# Prometheus's module likewise (prometheus/go.sum); its module version v0.MMNN.P is release M.NN.P.
PROMETHEUS_VERSION=$(GOFLAGS=-mod=readonly go -C "$here/prometheus" list -m -f '{{.Version}}' \
  github.com/prometheus/prometheus)
IFS=. read -r _ prom_minor prom_patch <<< "${PROMETHEUS_VERSION#v}"
PROMETHEUS_RELEASE="$(( 10#$prom_minor / 100 )).$(( 10#$prom_minor % 100 )).$prom_patch"

export CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$out/.stamps"

# Kubernetes' own version stamps, or `--version` prints v0.0.0-master.
minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
kube_ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION \
 -X k8s.io/client-go/pkg/version.gitMajor=1 \
 -X k8s.io/client-go/pkg/version.gitMinor=$minor"

# helm's release builds stamp the Kubernetes version it assumes offline (`helm template`, `helm lint`) from
# the client-go it is built with (v0.37 -> 1.37), as its Makefile does; unstamped it assumes 1.20, below
# our chart's kubeVersion floor.
helm_gomod=$(cd "${TMPDIR:-/tmp}" && go mod download -json "helm.sh/helm/v3@$HELM_VERSION" |
  sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
client_go=$(awk '$1 == "k8s.io/client-go" {print $2}' "$helm_gomod")  # v0.37.0
IFS=. read -r client_go_major helm_k8s_minor _ <<< "${client_go#v}"
helm_k8s_major=$(( client_go_major + 1 ))
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  helm_ldflags+=" -X $pkg.k8sVersionMajor=$helm_k8s_major -X $pkg.k8sVersionMinor=$helm_k8s_minor"
done

mod_hash=$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-16)

# A stamp from before per-binary stamps: its binaries were built by the same commands as below for all
# but helm (and egctl and prometheus, which came later), so adopt them when the versions match rather than
# spend many minutes rebuilding them.
legacy="$out/.stamp"
adopt_legacy() {  # name, want
  [[ ! -f "$out/.stamps/$1" && -x "$out/$1" && -f "$legacy" ]] || return 1
  [[ "$1" != helm && "$1" != egctl && "$1" != prometheus ]] || return 1
  grep -q "kube=$KUBE_VERSION etcd=$ETCD_VERSION kwok=$KWOK_VERSION " "$legacy" || return 1
  echo "$2" > "$out/.stamps/$1"
}

# The output directory is left out when stamps are compared: the one .testbin reached through a worktree's
# symlink is the same directory, and its binaries are up to date whatever path names it.
portable() { sed -E 's#-o [^ ]*/([^/ ]+) #-o <out>/\1 #; s#GOBIN=[^ ]* #GOBIN=<out> #'; }

start=$(date +%s)
built=()
# build NAME INPUTS COMMAND...: run COMMAND unless NAME's stamp says it was built by it from these INPUTS.
build() {
  local name=$1 inputs=$2; shift 2
  local want="$* inputs=$inputs"
  if [[ -x "$out/$name" && "$(portable 2>/dev/null < "$out/.stamps/$name")" == "$(portable <<< "$want")" ]] ||
     adopt_legacy "$name" "$want"
  then
    return
  fi
  echo "testbin: building $name"
  rm -f "$out/.stamps/$name"
  (cd "$here" && "$@")
  echo "$want" > "$out/.stamps/$name"
  built+=("$name")
}

for b in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd; do
  main_hash=$(sha256sum "$here/cmd/$b/main.go" | cut -c1-16)
  build "$b" "$mod_hash-$main_hash" go build -trimpath -ldflags "$kube_ldflags" -o "$out/$b" "./cmd/$b"
done
build kwok "$KWOK_VERSION" env GOBIN="$out" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
build helm "$HELM_VERSION" env GOBIN="$out" go install -trimpath -ldflags "$helm_ldflags" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
egctl_hash=$(cat "$here/egctl/go.mod" "$here/egctl/go.sum" | sha256sum | cut -c1-16)
# -dwarf=false: the compiler's debug info, which -w drops at link anyway (a sixth less CPU for egctl's cold build).
build egctl "$egctl_hash" env GOFLAGS=-mod=readonly go -C egctl build -trimpath -gcflags=all=-dwarf=false \
  -ldflags "-s -w -X github.com/envoyproxy/gateway/internal/cmd/version.envoyGatewayVersion=$EGCTL_VERSION" \
  -o "$out/egctl" github.com/envoyproxy/gateway/cmd/egctl
prometheus_hash=$(cat "$here/prometheus/go.mod" "$here/prometheus/go.sum" | sha256sum | cut -c1-16)
# remove_all_sd: none of its service discoveries but static, file and HTTP (the tests name their targets);
# without the builtinassets tag its web UI is left out too (the tests read its HTTP API only).
build prometheus "$prometheus_hash" env GOFLAGS=-mod=readonly go -C prometheus build -trimpath -tags remove_all_sd \
  -gcflags=all=-dwarf=false -ldflags "-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_RELEASE" \
  -o "$out/prometheus" github.com/prometheus/prometheus/cmd/prometheus

echo "kube=$KUBE_VERSION etcd=$ETCD_VERSION kwok=$KWOK_VERSION helm=$HELM_VERSION (helm assumes Kubernetes" \
  "$helm_k8s_major.$helm_k8s_minor) mod=$mod_hash egctl=$EGCTL_VERSION prometheus=$PROMETHEUS_VERSION" > "$out/.stamp"
if (( ${#built[@]} )); then
  echo "testbin: built ${built[*]} in $(( $(date +%s) - start ))s into $out"
else
  echo "testbin: up to date in $out"
fi
