#!/usr/bin/env bash
# Builds the real components the tests and the dev environment run from the Go
# modules pinned under hack/tools/ and in go.mod, into bin/: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, kubelet,
# kubectl, containerd 2 (with its runc shim and ctr), crictl, the CNI plugins,
# MinIO, restic and helm. runc comes from Debian's package (installed here when
# missing): building it from its module needs cgo and libseccomp, and Debian's
# runc 1.1 is what the node was proven with. Idempotent: a binary is rebuilt
# only when its pinned module set, its flags or the Go version changed.
#
# usage: hack/tools.sh [name ...]   (default: all)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$ROOT/bin}
STAMPS=$BIN/.stamps
mkdir -p "$BIN" "$STAMPS"

# name|module dir (relative to ROOT)|packages (space separated)|outputs|env and tags
COMPONENTS=(
  "etcd|hack/tools/etcd|go.etcd.io/etcd/server/v3|etcd|"
  "kube|hack/tools/kube|k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl|kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubectl|CGO_ENABLED=0"
  "containerd|hack/tools/containerd|github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/ctr|containerd ctr|CGO_ENABLED=0 TAGS=no_btrfs,urfave_cli_no_docs"
  "containerd-shim|hack/tools/containerd|github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2|containerd-shim-runc-v2|CGO_ENABLED=0 TAGS=no_btrfs,urfave_cli_no_docs,no_grpc"
  "crictl|hack/tools/crictl|sigs.k8s.io/cri-tools/cmd/crictl|crictl|CGO_ENABLED=0"
  "cni|hack/tools/cni|github.com/containernetworking/plugins/plugins/main/bridge github.com/containernetworking/plugins/plugins/ipam/host-local github.com/containernetworking/plugins/plugins/main/loopback github.com/containernetworking/plugins/plugins/meta/portmap|cni/bridge cni/host-local cni/loopback cni/portmap|CGO_ENABLED=0"
  "minio|hack/tools/minio|github.com/minio/minio|minio|"
  "restic|.|github.com/restic/restic/cmd/restic|restic|CGO_ENABLED=0"
  "helm|hack/tools/helm|helm.sh/helm/v4/cmd/helm|helm|CGO_ENABLED=0"
)

log() { printf '[tools] %s\n' "$*" >&2; }

modversion() { (cd "$ROOT/$1" && go list -m -f '{{.Version}}' "$2"); }

# ldflags stamps each component with the version of the module it is built
# from, so `--version` prints a real version (without it the kube binaries say
# v0.0.0-master+$Format:%H$, which also breaks `kubectl version`).
ldflags() {
  local name=$1 dir=$2 v flags='-s -w'
  case $name in
  kube)
    v=$(modversion "$dir" k8s.io/kubernetes)
    local minor=${v#v1.}; minor=${minor%%.*}
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      flags+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    done ;;
  containerd*)
    v=$(modversion "$dir" github.com/containerd/containerd/v2)
    flags+=" -X github.com/containerd/containerd/v2/version.Version=$v" ;;
  crictl)
    v=$(modversion "$dir" sigs.k8s.io/cri-tools)
    flags+=" -X sigs.k8s.io/cri-tools/pkg/version.Version=$v" ;;
  minio)
    # A pseudo-version (v0.0.0-<yyyymmddhhmmss>-<commit>) says when and what
    # was built; MinIO's own releases are named by that time.
    v=$(modversion "$dir" github.com/minio/minio)
    local ts=${v#v0.0.0-} commit=${v##*-}; ts=${ts%%-*}
    local when="${ts:0:4}-${ts:4:2}-${ts:6:2}T${ts:8:2}:${ts:10:2}:${ts:12:2}Z"
    for kv in "Version=$when" "ReleaseTag=RELEASE.${when//:/-}" "CommitID=$commit" "ShortCommitID=${commit:0:12}" "CopyrightYear=${ts:0:4}"; do
      flags+=" -X github.com/minio/minio/cmd.$kv"
    done ;;
  cni)
    v=$(modversion "$dir" github.com/containernetworking/plugins)
    flags+=" -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$v" ;;
  helm)
    v=$(modversion "$dir" helm.sh/helm/v4)
    flags+=" -X helm.sh/helm/v4/internal/version.version=$v -X helm.sh/helm/v4/internal/version.gitTreeState=clean" ;;
  esac
  echo "$flags"
}

# stamp is what a build depends on: the module files, the package list, the
# flags and the toolchain. The Go build cache makes an unchanged rebuild cheap,
# but linking kube-apiserver still costs tens of seconds, so we skip it outright.
stamp() {
  local dir=$1 pkgs=$2 extra=$3
  { go version; echo "$pkgs"; echo "$extra"; cat "$ROOT/$dir/go.mod" "$ROOT/$dir/go.sum"; } | sha256sum | cut -d' ' -f1
}

build() {
  local name=$1 dir=$2 pkgs=$3 outs=$4 envs=$5
  local want have="" missing=0
  # The version stamps are part of the build: a new one rebuilds.
  want=$(stamp "$dir" "$pkgs" "$envs $(ldflags "$name" "$dir")")
  [[ -f $STAMPS/$name ]] && have=$(cat "$STAMPS/$name")
  for o in $outs; do [[ -x $BIN/$o ]] || missing=1; done
  if [[ $missing == 0 && $want == "$have" ]]; then
    log "$name: current ($outs)"
    return
  fi
  log "$name: building $outs (a cold build takes minutes)"
  local start=$SECONDS out=$BIN/ tags="" cgo=${CGO_ENABLED:-1} e
  for e in $envs; do
    case $e in
    TAGS=*) tags=${e#TAGS=} ;;
    CGO_ENABLED=*) cgo=${e#CGO_ENABLED=} ;;
    esac
  done
  [[ $name == cni ]] && out=$BIN/cni/ && mkdir -p "$BIN/cni"
  (cd "$ROOT/$dir" && CGO_ENABLED=$cgo go build -tags "$tags" -ldflags="$(ldflags "$name" "$dir")" -o "$out" $pkgs)
  # go.etcd.io/etcd/server/v3 builds a binary named "server" (a trailing
  # major version is skipped); give it the component's name.
  if [[ $name == etcd && -x $BIN/server ]]; then mv -f "$BIN/server" "$BIN/etcd"; fi
  echo "$want" >"$STAMPS/$name"
  log "$name: built in $((SECONDS - start))s"
}

# runc is the one host package the node needs; Debian's is used as is.
ensure_runc() {
  if command -v runc >/dev/null; then log "runc: $(runc --version | head -1)"; return; fi
  log "runc: installing Debian's package"
  if [[ $(id -u) != 0 ]]; then log "runc: not root, cannot install; the real node will not start"; return; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q runc >/dev/null || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q runc >/dev/null; }
}

want=("$@")
for c in "${COMPONENTS[@]}"; do
  IFS='|' read -r name dir pkgs outs envs <<<"$c"
  if ((${#want[@]})) && [[ " ${want[*]} " != *" $name "* ]]; then continue; fi
  build "$name" "$dir" "$pkgs" "$outs" "$envs"
done
if ! ((${#want[@]})) || [[ " ${want[*]} " == *" runc "* ]]; then ensure_runc; fi
