#!/usr/bin/env bash
# Builds the real components the tests and the dev environment run (etcd,
# kube-apiserver, kube-controller-manager, kubectl, MinIO, restic) from the Go modules
# pinned under hack/tools/ and in go.mod, into bin/. Idempotent: a binary is
# rebuilt only when its pinned module set or the Go version changed.
#
# usage: hack/tools.sh [name ...]   (default: all)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$ROOT/bin}
STAMPS=$BIN/.stamps
mkdir -p "$BIN" "$STAMPS"

# name|module dir (relative to ROOT)|packages (space separated)|outputs
COMPONENTS=(
  "etcd|hack/tools/etcd|go.etcd.io/etcd/server/v3|etcd"
  "kube|hack/tools/kube|k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl|kube-apiserver kube-controller-manager kubectl"
  "minio|hack/tools/minio|github.com/minio/minio|minio"
  "restic|.|github.com/restic/restic/cmd/restic|restic"
)

log() { printf '[tools] %s\n' "$*" >&2; }

# stamp is what a build depends on: the module files, the package list and
# the toolchain. The Go build cache makes an unchanged rebuild cheap, but
# linking kube-apiserver still costs tens of seconds, so we skip it outright.
stamp() {
  local dir=$1 pkgs=$2
  { go version; echo "$pkgs"; cat "$ROOT/$dir/go.mod" "$ROOT/$dir/go.sum"; } | sha256sum | cut -d' ' -f1
}

build() {
  local name=$1 dir=$2 pkgs=$3 outs=$4
  local want have="" missing=0
  want=$(stamp "$dir" "$pkgs")
  [[ -f $STAMPS/$name ]] && have=$(cat "$STAMPS/$name")
  for o in $outs; do [[ -x $BIN/$o ]] || missing=1; done
  if [[ $missing == 0 && $want == "$have" ]]; then
    log "$name: current ($outs)"
    return
  fi
  log "$name: building $outs (a cold build takes minutes)"
  local start=$SECONDS
  # -s -w drops debug info the tests never need and shortens linking.
  (cd "$ROOT/$dir" && go build -ldflags='-s -w' -o "$BIN/" $pkgs)
  # go.etcd.io/etcd/server/v3 builds a binary named "server" (a trailing
  # major version is skipped); give it the component's name.
  if [[ $name == etcd && -x $BIN/server ]]; then mv -f "$BIN/server" "$BIN/etcd"; fi
  echo "$want" >"$STAMPS/$name"
  log "$name: built in $((SECONDS - start))s"
}

want=("$@")
for c in "${COMPONENTS[@]}"; do
  IFS='|' read -r name dir pkgs outs <<<"$c"
  if ((${#want[@]})) && [[ " ${want[*]} " != *" $name "* ]]; then continue; fi
  build "$name" "$dir" "$pkgs" "$outs"
done
