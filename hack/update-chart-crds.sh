#!/usr/bin/env bash
# Copies the CRDs (artifacts/crds, generated from pkg/apis) into the chart's
# crds/ and writes the project's VERSION into Chart.yaml (version without
# the leading v, appVersion with it). hack/update-codegen.sh regenerates
# the CRDs; hack/verify-codegen.sh checks the chart matches.
#
# usage: hack/update-chart-crds.sh [output dir]   (default: the chart)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHART=$ROOT/charts/kubestash-catalog
OUT=${1:-$CHART}
VERSION=$(cat "$ROOT/VERSION")

mkdir -p "$OUT/crds"
rm -f "$OUT"/crds/*.yaml
cp "$ROOT"/artifacts/crds/*.yaml "$OUT/crds/"
sed -e "s/^version: .*/version: ${VERSION#v}/" -e "s/^appVersion: .*/appVersion: $VERSION/" \
  "$CHART/Chart.yaml" >"$OUT/Chart.yaml.new"
mv "$OUT/Chart.yaml.new" "$OUT/Chart.yaml"
