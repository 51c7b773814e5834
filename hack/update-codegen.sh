#!/usr/bin/env bash
# Regenerates everything derived from the API types in pkg/apis:
#   - deepcopy, defaulters, conversions (zz_generated.*.go beside the types)
#   - OpenAPI definitions          -> pkg/generated/openapi
#   - clientset (with watch and apply configurations), listers, informers
#                                  -> pkg/generated/{clientset,applyconfiguration,listers,informers}
#   - CRD manifests                -> artifacts/crds
# with k8s.io/code-generator's kube_codegen.sh and sigs.k8s.io/controller-tools,
# both at the versions go.mod pins.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
MODULE=kubestash.dev/kubestash
BOILERPLATE=$ROOT/hack/boilerplate.go.txt

# kube_codegen.sh installs its generators into GOBIN; keep them in bin/ so
# they match the pinned code-generator and stay out of the user's GOPATH.
export GOBIN=$ROOT/bin/codegen
mkdir -p "$GOBIN"
# go list -m leaves Dir empty until the module is in the module cache (a
# fresh machine); go mod download fetches it and says where it is.
CODEGEN_PKG=$(go mod download -json k8s.io/code-generator | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [[ ! -f $CODEGEN_PKG/kube_codegen.sh ]]; then
  echo "cannot find kube_codegen.sh of k8s.io/code-generator (got '$CODEGEN_PKG')" >&2
  exit 1
fi
# shellcheck source=/dev/null
source "$CODEGEN_PKG/kube_codegen.sh"

echo "[codegen] helpers (deepcopy, defaults, conversion)"
kube::codegen::gen_helpers --boilerplate "$BOILERPLATE" "$ROOT/pkg/apis"

echo "[codegen] openapi"
kube::codegen::gen_openapi \
  --output-dir "$ROOT/pkg/generated/openapi" \
  --output-pkg "$MODULE/pkg/generated/openapi" \
  --extra-pkgs k8s.io/api/core/v1 \
  --extra-pkgs k8s.io/apimachinery/pkg/util/intstr \
  --report-filename "$ROOT/hack/api-violations.list" \
  --output-model-name-file zz_generated.model_name.go \
  ${UPDATE_API_KNOWN_VIOLATIONS:+--update-report} \
  --boilerplate "$BOILERPLATE" \
  "$ROOT/pkg/apis"

echo "[codegen] clientset, listers, informers, apply configurations"
kube::codegen::gen_client \
  --with-watch \
  --with-applyconfig \
  --output-dir "$ROOT/pkg/generated" \
  --output-pkg "$MODULE/pkg/generated" \
  --boilerplate "$BOILERPLATE" \
  "$ROOT/pkg/apis"

echo "[codegen] CRDs"
# Generated manifests are replaced; hand-written ones (first line "# Hand-written")
# stay.
mkdir -p "$ROOT/artifacts/crds"
for f in "$ROOT"/artifacts/crds/*.yaml; do
  [[ -e $f ]] || continue
  head -n1 "$f" | grep -q '^# Hand-written' || rm -f "$f"
done
go tool controller-gen crd:crdVersions=v1 \
  paths=./pkg/apis/storage/... paths=./pkg/apis/core/... paths=./pkg/apis/addons/... \
  output:crd:dir="$ROOT/artifacts/crds"
echo "[codegen] done"
