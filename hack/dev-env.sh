#!/usr/bin/env bash
# hack/dev-env.sh up|down|status: the test environment in the background.
# up builds the components (cached), starts them on 127.0.0.1 and waits until
# they are ready; down stops exactly what up started.
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
  # The catalog server, the controller, the agent its Jobs run and the
  # local node that runs them.
  go build -o bin/ ./cmd/... ./test/localnode/cmd/localnode
fi
go build -o bin/devenv ./hack/devenv
exec bin/devenv "$cmd"
