#!/usr/bin/env bash
# make demo: a stand-alone PVC backed up and restored through the whole
# system, on a local control plane (etcd, kube-apiserver,
# kube-controller-manager, the catalog server, the controller and, with
# BACKEND=s3, MinIO) and a real node (containerd, kubelet, kube-proxy,
# kube-scheduler) that runs the Jobs in containers of our own images.
# It needs root and cgroups (the node runs a kubelet, containerd and runc).
#
#   BACKEND=local (default) | s3    where the backups go
#   DEMO_KEEP=1 (default) | 0       leave the environment up, or stop it
#   KUBESTASH_DEV_DIR (.dev)        where the environment keeps its state
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BACKEND=${BACKEND:-local}
NS=demo
DEV=${KUBESTASH_DEV_DIR:-$ROOT/.dev}
# How the hints at the end name it: relative to the checkout when inside.
DEV_SHOWN=${DEV#"$ROOT"/}
DEMO=$DEV/demo
# The dev environment lets local backends live only under this directory
# (the servers' --local-backend-dirs).
BACKEND_DIR=$DEV/local-backends/demo
KUBECTL=("$ROOT/bin/kubectl" --kubeconfig "$DEV/kubeconfig")
step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nDEMO FAILED: %s\n' "$*" >&2; exit 1; }
case "$BACKEND" in local|s3) ;; *) fail "BACKEND must be local or s3, not $BACKEND" ;; esac
CRICTL=("$ROOT/bin/crictl" --config "$DEV/node/crictl.yaml")

# The demo runs its Jobs on a real node: say so plainly where one can't run.
if [[ $(id -u) != 0 ]]; then
  fail "the demo runs a real Kubernetes node (kubelet, containerd, runc, a bridge and firewall rules) and needs root; run it as root on a Linux machine with cgroups"
fi
if [[ ! -d /sys/fs/cgroup/memory && ! -f /sys/fs/cgroup/cgroup.controllers ]]; then
  fail "the demo runs a real Kubernetes node and needs cgroups (v1 or v2) mounted at /sys/fs/cgroup; this machine has none"
fi

step "Starting a fresh environment (hack/dev-env.sh up)"
if [[ -x bin/devenv ]] && bin/devenv status >/dev/null 2>&1; then
  echo "an environment is up: restarting it so that the demo starts clean"
  hack/dev-env.sh down
fi
hack/dev-env.sh up
set -a; source "$DEV/minio.env"; set +a
rm -rf "$DEMO" "$BACKEND_DIR" && mkdir -p "$DEMO/data" "$BACKEND_DIR"

step "The node that runs the Jobs (kubectl get nodes -o wide)"
"${KUBECTL[@]}" get nodes -o wide

step "Writing sample data into the PVC's volume ($DEMO/data)"
(
  cd "$DEMO/data"
  for d in docs photos/2026 db; do mkdir -p "$d"; done
  for i in $(seq 1 300); do head -c $((RANDOM % 16384)) /dev/urandom >"docs/file-$i.txt"; done
  for i in 1 2 3; do head -c $((4 << 20)) /dev/urandom >"photos/2026/img-$i.raw"; done
  head -c $((8 << 20)) /dev/urandom >db/data.bin
  chmod 600 db/data.bin; chmod 755 docs/file-1.txt
  ln -s ../db/data.bin docs/link-to-db
  mkdir -p empty/dir
  touch -d '2020-01-02 03:04:05' docs/file-2.txt
  # Files of other users: ownership is restored too.
  chown 1234:5678 docs/file-3.txt; chown -R 999:999 photos
)
checksums() {
  (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum
   find . -type l -printf '%p -> %l\n' | sort
   find . -type d -empty | sort
   # The volume's root is the mount point, not data: its mtime changes
   # when the data is deleted.
   find . -mindepth 1 -printf '%p %m %U:%G %Ts\n' | sort)
}
checksums "$DEMO/data" >"$DEMO/before.txt"
echo "$(find "$DEMO/data" -type f | wc -l) files, $(du -sh "$DEMO/data" | cut -f1)"

step "Creating the PVC, the storage ($BACKEND), the retention policy and the BackupConfiguration"
if [[ $BACKEND == s3 ]]; then
  STORAGE="provider: s3
    s3: {endpoint: $MINIO_ENDPOINT, bucket: $MINIO_BUCKET, region: us-east-1, prefix: demo, secretName: s3-secret}"
  # The storage's credentials: only an S3 storage has any.
  STORAGE_SECRET="apiVersion: v1
kind: Secret
metadata: {name: s3-secret, namespace: $NS}
stringData: {AWS_ACCESS_KEY_ID: $AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: $AWS_SECRET_ACCESS_KEY}
---"
else
  STORAGE="provider: local
    local: {mountPath: /safe/data, hostPath: {path: $BACKEND_DIR}}"
  STORAGE_SECRET=""
fi
"${KUBECTL[@]}" apply -f - <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: $NS}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: demo-data}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: $DEMO/data}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: target-pvc, namespace: $NS}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  volumeName: demo-data
  resources: {requests: {storage: 1Gi}}
---
$STORAGE_SECRET
apiVersion: v1
kind: Secret
metadata: {name: encrypt-secret, namespace: $NS}
stringData: {RESTIC_PASSWORD: demo-password-change-me}
---
apiVersion: storage.kubestash.com/v1alpha1
kind: BackupStorage
metadata: {name: demo-storage, namespace: $NS}
spec:
  storage:
    $STORAGE
  default: true
  deletionPolicy: Delete
---
apiVersion: storage.kubestash.com/v1alpha1
kind: RetentionPolicy
metadata: {name: demo-retention, namespace: $NS}
spec:
  default: true
  successfulSnapshots: {last: 5}
  failedSnapshots: {last: 2}
---
apiVersion: core.kubestash.com/v1alpha1
kind: BackupConfiguration
metadata: {name: pvc-backup, namespace: $NS}
spec:
  target: {apiGroup: "", kind: PersistentVolumeClaim, name: target-pvc, namespace: $NS}
  backends:
  - name: demo-backend
    storageRef: {name: demo-storage}
    retentionPolicy: {name: demo-retention}
  sessions:
  - name: frequent-backup
    scheduler: {schedule: "*/5 * * * *"}
    repositories:
    - name: demo-repository
      backend: demo-backend
      directory: /pvc-backup-demo
      encryptionSecret: {name: encrypt-secret}
    addon:
      name: pvc-addon
      tasks:
      - name: logical-backup
YAML

# wait_for DESCRIPTION SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local end=$((SECONDS + secs)) last=""
  while ((SECONDS < end)); do
    if out=$("$@" 2>/dev/null); then echo "$out"; return 0; fi
    [[ -n ${out:-} && $out != "$last" ]] && { echo "   $out"; last=$out; }
    sleep 2
  done
  fail "timed out waiting for $what"
}
snapshot_phase() {
  local p progress
  p=$("${KUBECTL[@]}" get snapshots -n $NS -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | sort | uniq -c | xargs)
  # restic's progress, as the agent writes it into the Snapshot's status.
  progress=$("${KUBECTL[@]}" get snapshots -n $NS -o jsonpath='{range .items[*]}{.status.components.dump.resticStats[*].progress.percentDone}{end}')
  echo "snapshots: ${p:-none yet}${progress:+ (progress $progress)}"
  [[ $p == *Failed* ]] && return 1
  [[ $p == *Succeeded* ]]
}

step "Waiting for the first backup (triggered as soon as the configuration is Ready)"
wait_for "the first snapshot" 300 snapshot_phase
if "${KUBECTL[@]}" get snapshots -n $NS -o jsonpath='{.items[*].status.phase}' | grep -q Failed; then
  "${KUBECTL[@]}" get snapshots -n $NS -o yaml | tail -40
  fail "the backup failed"
fi

step "The backup ran in a container on the node: its pod, container and logs"
"${KUBECTL[@]}" get pods -n $NS -o wide
BACKUP_POD=$("${KUBECTL[@]}" get pods -n $NS -o name | grep -v trigger | head -1)
echo
echo "crictl ps -a (containerd on the node):"
"${CRICTL[@]}" ps -a --label io.kubernetes.pod.namespace=$NS
echo
echo "kubectl logs -n $NS $BACKUP_POD (last lines):"
"${KUBECTL[@]}" logs -n $NS "$BACKUP_POD" | tail -5

step "kubectl get backupconfiguration,repo,snapshots -n $NS"
"${KUBECTL[@]}" get backupconfiguration,repo,snapshots -n $NS
echo
echo "the Snapshot's progress and result (status.components.dump.resticStats):"
R='.status.components.dump.resticStats[0]'
"${KUBECTL[@]}" get snapshots -n $NS -o custom-columns="NAME:.metadata.name,PHASE:.status.phase,DONE:$R.progress.percentDone,FILES:$R.progress.filesDone,TOTAL:$R.progress.total,SECONDS:$R.progress.secondsElapsed,UPLOADED:$R.summary.uploaded,SIZE:.status.size,INTEGRITY:.status.integrity,RESTIC-ID:$R.summary.id"
echo
# The catalog is plain YAML next to restic's data (repository/v1/...),
# which is left out here.
if [[ $BACKEND == s3 ]]; then
  echo "catalog files in the backend (bucket $MINIO_BUCKET, prefix demo/):"
  go run ./hack/bucketls demo | grep '\.yaml$' | grep -v '/repository/' | sort
else
  echo "catalog files in the backend ($BACKEND_DIR):"
  (cd "$BACKEND_DIR" && find . -name '*.yaml' -not -path '*/repository/*' | sed 's|^\./||' | sort)
fi

SNAP=$("${KUBECTL[@]}" get snapshots -n $NS -o jsonpath='{.items[0].metadata.name}')
FILES="/apis/catalog.kubestash.com/v1alpha1/namespaces/$NS/snapshots/$SNAP/files?path=/"
step "Looking inside the backup through the API (no restic password needed): kubectl get --raw \"$FILES\""
# One entry a line, for reading; the answer is a SnapshotFileList (docs/browse.md).
"${KUBECTL[@]}" get --raw "$FILES" | sed 's/},{/},\n  {/g; s/"items":\[/"items":[\n  /' | awk 'NR <= 12'

step "Deleting the data in the PVC"
find "$DEMO/data" -mindepth 1 -delete
echo "$(find "$DEMO/data" -mindepth 1 | wc -l) entries left"

step "Restoring the latest snapshot with a RestoreSession"
"${KUBECTL[@]}" apply -f - <<YAML
apiVersion: catalog.kubestash.com/v1alpha1
kind: RestoreSession
metadata: {name: pvc-restore, namespace: $NS}
spec:
  target: {apiGroup: "", kind: PersistentVolumeClaim, name: target-pvc, namespace: $NS}
  dataSource:
    repository: demo-repository
    snapshot: latest
    encryptionSecret: {name: encrypt-secret}
  addon:
    name: pvc-addon
    tasks:
    - name: logical-backup-restore
YAML
restore_done() {
  local p
  p=$("${KUBECTL[@]}" get restoresession pvc-restore -n $NS -o jsonpath='{.status.phase}')
  echo "restore: ${p:-Pending}"
  [[ $p == Failed || $p == Invalid ]] && fail "restore $p: $("${KUBECTL[@]}" get restoresession pvc-restore -n $NS -o jsonpath='{.status}')"
  [[ $p == Succeeded ]]
}
wait_for "the restore" 300 restore_done
"${KUBECTL[@]}" get restoresession -n $NS

step "Verifying every file: content (sha256), links, empty folders, modes, owners and mtimes"
checksums "$DEMO/data" >"$DEMO/after.txt"
if ! diff -u "$DEMO/before.txt" "$DEMO/after.txt" | head -20; then
  fail "the restored data differs from the original"
fi
echo "$(grep -c ' \./' "$DEMO/before.txt" || true) entries identical"

if [[ "${DEMO_KEEP:-1}" == 0 ]]; then
  step "Stopping the environment (DEMO_KEEP=0)"
  hack/dev-env.sh down
fi
echo
echo "DEMO SUCCEEDED: backed up a PVC to the $BACKEND backend, deleted its data, restored it, and every file matches."
echo
echo "What to try next:"
if [[ "${DEMO_KEEP:-1}" != 0 ]]; then
  echo "  - browse the catalog:   bin/kubectl --kubeconfig $DEV_SHOWN/kubeconfig get repositories,snapshots,backupsessions,restoresessions -n $NS"
  echo "  - one Snapshot in full: bin/kubectl --kubeconfig $DEV_SHOWN/kubeconfig get snapshots -n $NS -o yaml"
  echo "  - what it holds, and a file of it: bin/kubectl --kubeconfig $DEV_SHOWN/kubeconfig get --raw \"$FILES\""
  echo "    and .../snapshots/$SNAP/download?path=/<file>  (docs/browse.md)"
  echo "  - the same with the plugin: PATH=\$PWD/bin:\$PATH KUBECONFIG=$DEV_SHOWN/kubeconfig kubectl kubestash ls $SNAP -n $NS"
  echo "  - stop the environment: hack/dev-env.sh down   (or make dev-env-down)"
else
  echo "  - keep the environment up to browse it: make demo, then"
  echo "    bin/kubectl --kubeconfig $DEV_SHOWN/kubeconfig get repositories,snapshots -n $NS"
fi
echo "  - the same backup and restore step by step, with the manifests in artifacts/examples: docs/tutorial.md"
echo "  - what a namespace's user may and may not do: docs/security.md"
echo "  - how the catalog is served from the bucket: docs/architecture.md, docs/backend-layout.md"
