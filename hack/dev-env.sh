#!/usr/bin/env bash
# hack/dev-env.sh up|down|status: the test environment in the background.
# up builds the components and images (cached), starts the control plane, a
# real node (containerd, kubelet, kube-proxy, kube-scheduler on the bridge
# ksbr0, 10.88.0.1), installs charts/kubestash-catalog (the catalog server
# and the controller as pods of our images) and waits until they are
# ready; down stops exactly what up started and puts the host back as it
# was. It needs root (a kubelet, containerd and runc run here).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
cmd=${1:-}
case "$cmd" in
  up) hack/tools.sh ;;
  down|status) ;;
  *) echo "usage: hack/dev-env.sh up|down|status" >&2; exit 2 ;;
esac
mkdir -p bin
if [[ $cmd == up ]]; then
  # The servers and the agent run from the images; bin/ gets the
  # commands too (the kubectl plugin, bin/apiserver --help).
  go build -o bin/ ./cmd/...
  hack/images.sh
fi
go build -o bin/devenv ./hack/devenv
exec bin/devenv "$cmd"
