#!/usr/bin/env bash
# Fails when anything generated from pkg/apis is stale: runs update-codegen.sh
# on a copy of the tree and compares the generated files with ours.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Copy the sources only (no bin/, .dev/ or .git/), keeping the generator
# binaries' cache so a warm run stays quick.
tar -C "$ROOT" --exclude=./bin --exclude=./.dev --exclude=./.git -cf - . | tar -C "$TMP" -xf -
mkdir -p "$TMP/bin" && [[ -d $ROOT/bin/codegen ]] && cp -a "$ROOT/bin/codegen" "$TMP/bin/"
(cd "$TMP" && hack/update-codegen.sh >/dev/null)
# The chart carries copies of the CRDs and the VERSION.
(cd "$TMP" && hack/update-chart-crds.sh)

status=0
for d in pkg/generated pkg/apis artifacts/crds charts/kubestash-catalog/crds charts/kubestash-catalog/Chart.yaml; do
  if ! diff -r -q "$ROOT/$d" "$TMP/$d" >/dev/null; then
    echo "stale generated code in $d:" >&2
    diff -r -u "$ROOT/$d" "$TMP/$d" | head -50 >&2 || true
    status=1
  fi
done
if [[ $status != 0 ]]; then
  echo "run hack/update-codegen.sh and hack/update-chart-crds.sh and commit the result" >&2
  exit 1
fi
echo "generated code is current"
