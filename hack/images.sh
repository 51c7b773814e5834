#!/usr/bin/env bash
# Builds the project's container images FROM scratch, with no Docker and no
# registry: static binaries (CGO_ENABLED=0) written by hack/images into OCI
# image layout tarballs that `ctr -n k8s.io images import` loads and tags:
#
#   bin/images/apiserver.tar   ghcr.io/kubestash-catalog/apiserver:$VERSION (apiserver + restic)
#   bin/images/controller.tar  ghcr.io/kubestash-catalog/controller:$VERSION
#   bin/images/agent.tar       ghcr.io/kubestash-catalog/agent:$VERSION (agent + restic)
#   bin/images/pause.tar       ghcr.io/kubestash-catalog/pause:$VERSION (pod sandbox)
#   bin/images/images.txt      "NAME:TAG<TAB>TARBALL" per image, for importers
#
# VERSION is the file at the repository root. An image whose inputs (the
# sha256 of its files, its flags, the image writer) are unchanged is not
# rewritten (a stamp next to the tarball). The same binaries give the same
# digest: mtimes are fixed (SOURCE_DATE_EPOCH, else 1970) and nothing else
# varies. restic is bin/restic from hack/tools.sh (run here when it is
# missing).
#
# Environment: REGISTRY (default ghcr.io/kubestash-catalog), OUT (bin/images),
# REVISION (org.opencontainers.image.revision; default: the git commit),
# CA_BUNDLE (CA certificates put at /etc/ssl/certs/ca-certificates.crt in the
# images that talk to S3; default the host's; empty: none), SOURCE_DATE_EPOCH.
#
# usage: hack/images.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VERSION=$(tr -d '[:space:]' <VERSION)
REGISTRY=${REGISTRY:-ghcr.io/kubestash-catalog}
OUT=${OUT:-$ROOT/bin/images}
BINS=$OUT/bin
REVISION=${REVISION-$(git rev-parse HEAD 2>/dev/null || true)}
CA_BUNDLE=${CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}
SOURCE=https://github.com/kubestash/kubestash-catalog
mkdir -p "$BINS"

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[[ $VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+ ]] || die "VERSION holds '$VERSION', want vX.Y.Z"

# restic: the pinned one hack/tools.sh builds.
if [[ ! -x bin/restic ]]; then
  log "bin/restic is missing: building it with hack/tools.sh restic"
  hack/tools.sh restic || true
fi
[[ -x bin/restic ]] || die "bin/restic is missing and hack/tools.sh restic did not build it; the agent image needs it"

# Our binaries, static. The Go build cache makes an unchanged rebuild cheap,
# and go build leaves an up-to-date binary alone.
log "building apiserver, controller, agent, pause (static, $VERSION)"
CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X kubestash.dev/kubestash/pkg/version.Version=$VERSION" \
  -o "$BINS/" ./cmd/apiserver ./cmd/controller ./cmd/agent ./hack/pause
CGO_ENABLED=0 go build -trimpath -o "$OUT/.tool/images" ./hack/images
TOOL=$OUT/.tool/images

# A scratch image has no libc: restic must be static. hack/tools.sh builds it
# with CGO_ENABLED=0; should bin/restic be linked against libc anyway (an
# older hack/tools.sh built it with cgo), the same pinned module is built
# again without cgo for the image.
if "$TOOL" -is-static bin/restic 2>/dev/null; then
  cmp -s bin/restic "$BINS/restic" || cp -f bin/restic "$BINS/restic"
else
  log "bin/restic is not a static binary ($("$TOOL" -is-static bin/restic 2>&1 || true));"
  log "building restic $(go list -m -f '{{.Version}}' github.com/restic/restic) with CGO_ENABLED=0 for the agent image"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BINS/restic" github.com/restic/restic/cmd/restic
fi

ca_file=()
if [[ -n $CA_BUNDLE ]]; then
  [[ -f $CA_BUNDLE ]] || die "CA_BUNDLE=$CA_BUNDLE does not exist (set CA_BUNDLE= to build without CA certificates)"
  ca_file=(-file "$CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt:0644")
fi

common=(-env PATH=/usr/local/bin -workdir /
  -label "org.opencontainers.image.source=$SOURCE"
  -label "org.opencontainers.image.licenses=Apache-2.0"
  -label "org.opencontainers.image.vendor=KubeStash catalog"
  -label "org.opencontainers.image.version=$VERSION")
if [[ -n $REVISION ]]; then common+=(-label "org.opencontainers.image.revision=$REVISION"); fi

list=()

# image NAME [hack/images flags...]: writes $OUT/NAME.tar unless its stamp
# says the same inputs made it.
image() {
  local name=$1 ref=$REGISTRY/$1:$VERSION tar=$OUT/$1.tar stamp=$OUT/.$1.stamp
  shift
  local args=(-name "$ref" -out "$tar" "${common[@]}" "$@")
  local want have="" line digest size note="" i src
  want=$({
    sha256sum "$TOOL" | cut -d' ' -f1
    printf '%s\n' "${args[@]}" "SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-}"
    for ((i = 0; i < ${#args[@]} - 1; i++)); do
      if [[ ${args[i]} == -file ]]; then # every file's content
        src=${args[i + 1]%%=*}
        sha256sum "$src" || echo "missing $src"
      fi
    done
  } | sha256sum | cut -d' ' -f1)
  [[ -f $stamp && -f $tar ]] && have=$(head -1 "$stamp")
  if [[ $want == "$have" ]]; then
    line=$(sed -n 2p "$stamp")
    note="  (unchanged)"
  else
    line=$("$TOOL" "${args[@]}")
    printf '%s\n%s\n' "$want" "$line" >"$stamp"
  fi
  # line: NAME DIGEST SIZE
  read -r _ digest size <<<"$line"
  printf '%-44s %s %6s MiB  %s%s\n' "$ref" "$digest" "$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }')" \
    "${tar#"$ROOT"/}" "$note"
  list+=("$ref"$'\t'"$tar")
}

# The catalog server runs restic to serve snapshots/files and
# snapshots/download; it finds it next to itself.
image apiserver \
  -file "$BINS/apiserver=/usr/local/bin/apiserver:0755" "${ca_file[@]}" \
  -file "$BINS/restic=/usr/local/bin/restic:0755" \
  -entrypoint /usr/local/bin/apiserver -user 65532:65532 \
  -label "org.opencontainers.image.title=kubestash-catalog apiserver" \
  -label "org.opencontainers.image.description=KubeStash catalog API server: Repositories, Snapshots, BackupSessions and RestoreSessions served from the backup backend"

image controller \
  -file "$BINS/controller=/usr/local/bin/controller:0755" "${ca_file[@]}" \
  -entrypoint /usr/local/bin/controller -user 65532:65532 \
  -label "org.opencontainers.image.title=kubestash-catalog controller" \
  -label "org.opencontainers.image.description=KubeStash catalog controller: BackupStorages, BackupConfigurations, BackupSessions, RestoreSessions"

# The agent runs as root (0:0): a backup must read every file of the volume
# whoever owns it, and a restore must give files back their owners. restic
# sits next to the agent, where pkg/restic.DefaultBinary looks first (then
# PATH, which is /usr/local/bin too).
image agent \
  -file "$BINS/agent=/usr/local/bin/agent:0755" \
  -file "$BINS/restic=/usr/local/bin/restic:0755" "${ca_file[@]}" \
  -entrypoint /usr/local/bin/agent -user 0:0 \
  -label "org.opencontainers.image.title=kubestash-catalog agent" \
  -label "org.opencontainers.image.description=KubeStash catalog agent (backup, restore, trigger, forget) with restic"

# The pod sandbox: holds the pod's namespaces, reaps zombies. 65535 is the
# user of the upstream pause image.
image pause \
  -file "$BINS/pause=/pause:0755" \
  -entrypoint /pause -user 65535:65535 \
  -label "org.opencontainers.image.title=kubestash-catalog pause" \
  -label "org.opencontainers.image.description=Pod sandbox (pause) program"

printf '%s\n' "${list[@]}" >"$OUT/images.txt.tmp"
mv -f "$OUT/images.txt.tmp" "$OUT/images.txt"
log "wrote ${OUT#"$ROOT"/}/images.txt; load with: ctr -n k8s.io images import <tarball>"
