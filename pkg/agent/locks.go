package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/restic"
)

// Dead restic locks.
//
// restic takes a lock for stale only when it was made on the same host by
// a process that is gone, or was not refreshed for 30 minutes. In a
// cluster every Pod is a host of its own (its hostname is the Pod's name),
// so the lock of a backup pod that died without cleaning up (SIGKILL, the
// OOM killer, a Pod deleted with grace 0) blocks a forget --prune or a
// wipe-out for half an hour, and a killed prune's exclusive lock blocks
// backups and restores as long. The Kubernetes API knows better: a lock
// whose hostname names a Job pod of our namespace that is gone, or whose
// containers have all terminated, can have no restic behind it. Such locks
// are removed; anything we cannot prove dead is left to restic's rule.

// jobPodName is the shape of the name the Job controller gives its pods:
// <job name>-<5 characters>, the suffix drawn from the alphabet of
// k8s.io/apimachinery/pkg/util/rand (names.SimpleNameGenerator). Only
// hostnames of that shape are looked up: a lock of a person's restic (a
// laptop's hostname) or of a live pod of another cluster would be "not
// found" in our namespace too, and must not be taken for dead; with the
// shape required, such a lock is left to restic's 30-minute rule. Job pod
// names are at most 63 characters (the generator shortens the Job's name),
// so the kubelet never truncates them into a hostname that names no pod.
var jobPodName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?-[bcdfghjklmnpqrstvwxz2456789]{5}$`)

func looksLikeJobPod(host string) bool {
	return len(validation.IsDNS1123Label(host)) == 0 && jobPodName.MatchString(host)
}

// lockID is the shape of a restic id (a lock file's name); anything else
// in locks/ (a temporary file of an upload in progress) is not a lock.
var lockID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// lockIsDead decides whether restic lock l, found by the agent running in
// Pod self of namespace ns, belongs to a restic that can no longer run: its
// hostname has the shape of a Job pod's name (jobPodName), is not self,
// and names a Pod of ns that does not exist or whose phase is Succeeded or
// Failed (every container terminated, none to be restarted). reason says
// why, for the log. An error of the API keeps the lock: a lock is removed
// only on proof.
//
// Known limit: the pod is looked up in ns only. The Jobs that write a
// repository (backup, retention, wipe-out) run in its namespace, and the
// callers check only repositories of their own namespace; a restore Job
// of another namespace (a RestoreSession with dataSource.namespace) reads
// it from a Pod we do not see, so a retention Job here may remove that
// restore's lock and prune under it: the restore then fails (restic only
// reads in a restore), the repository is unharmed.
func lockIsDead(ctx context.Context, kube kubernetes.Interface, ns, self string, l *restic.Lock) (dead bool, reason string, err error) {
	host := l.Hostname
	switch {
	case host == "":
		return false, "the lock names no host", nil
	case host == self:
		// restic unlock checks the PID of a lock of its own host.
		return false, "the lock is this pod's", nil
	case !looksLikeJobPod(host):
		return false, "the host is not a Job pod's name", nil
	}
	pod, err := kube.CoreV1().Pods(ns).Get(ctx, host, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return true, "the pod does not exist", nil
	case err != nil:
		return false, "", fmt.Errorf("get pod %s/%s: %w", ns, host, err)
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		return true, "the pod is " + string(pod.Status.Phase), nil
	default:
		// Pending, Running (even while being deleted: its containers
		// may still run) or Unknown (its node does not answer).
		return false, "the pod is " + strings.ToLower(string(pod.Status.Phase)), nil
	}
}

// selfHostname is the hostname restic writes into this Pod's locks.
func (a *Agent) selfHostname() string {
	if a.Hostname != "" {
		return a.Hostname
	}
	h, _ := os.Hostname()
	return h
}

// locksDir is the key of the locks folder of a component's restic
// repository in the Repository's backend.
func locksDir(repo *catalogv1alpha1.Repository, componentPath string) string {
	return strings.Trim(path.Join(repo.Spec.Path, componentPath, "locks"), "/")
}

// removeDeadLocks removes the locks of the restic repository r of repo's
// component at componentPath whose restic is provably dead (lockIsDead),
// and returns how many it removed. It is best effort: what fails is
// logged and the lock stays, for restic's own handling (--retry-lock,
// unlock) to go on from. A lock file costs one restic run to read (the
// key is derived each time), so the backend listing comes first: without
// lock files, nothing runs.
//
// It acts only on a Repository of the agent's own namespace: the Jobs that
// write a repository run in its namespace, and a Pod elsewhere could not
// be looked up. restic has no command to remove one given lock (unlock
// removes the stale ones or, with --remove-all, all of them), so the lock
// file is deleted through the backend.
func (a *Agent) removeDeadLocks(ctx context.Context, r *restic.Repo, repo *catalogv1alpha1.Repository, componentPath string) int {
	if a.PodNamespace == "" || repo.Namespace != a.PodNamespace {
		klog.V(2).InfoS("Not looking for dead locks: the repository's Jobs run in a namespace whose pods this one does not see",
			"repository", klog.KObj(repo), "podNamespace", a.PodNamespace)
		return 0
	}
	b, err := a.backendOf(ctx, repo)
	if err != nil {
		klog.InfoS("Could not look for dead locks", "repository", klog.KObj(repo), "component", componentPath, "err", err)
		return 0
	}
	dir := locksDir(repo, componentPath)
	res, err := b.List(ctx, dir+"/", backend.ListOptions{})
	if err != nil {
		klog.InfoS("Could not look for dead locks", "repository", klog.KObj(repo), "component", componentPath, "err", err)
		return 0
	}
	self := a.selfHostname()
	removed := 0
	for _, o := range res.Objects {
		id := path.Base(o.Key)
		if !lockID.MatchString(id) || path.Dir(o.Key) != dir {
			continue
		}
		l, err := r.ReadLock(ctx, id)
		if err != nil {
			if _, serr := b.Stat(ctx, o.Key); errors.Is(serr, backend.ErrNotFound) {
				continue // its restic finished meanwhile
			}
			klog.InfoS("Kept a lock that could not be read", "repository", r.URL(), "lock", id, "err", err)
			continue
		}
		dead, reason, err := lockIsDead(ctx, a.Kube, a.PodNamespace, self, l)
		if err != nil {
			klog.InfoS("Kept a lock whose pod could not be checked", "repository", r.URL(), "lock", id, "host", l.Hostname, "err", err)
			continue
		}
		if !dead {
			klog.V(2).InfoS("Kept a lock", "repository", r.URL(), "lock", id, "host", l.Hostname, "exclusive", l.Exclusive, "reason", reason)
			continue
		}
		if err := b.Delete(ctx, o.Key, backend.DeleteOptions{}); err != nil && !errors.Is(err, backend.ErrNotFound) {
			klog.InfoS("Could not remove a dead lock", "repository", r.URL(), "lock", id, "pod", klog.KRef(a.PodNamespace, l.Hostname), "err", err)
			continue
		}
		removed++
		klog.InfoS("Removed the lock of a pod that no longer runs", "repository", r.URL(), "lock", id,
			"pod", klog.KRef(a.PodNamespace, l.Hostname), "reason", reason, "exclusive", l.Exclusive, "lockTime", l.Time)
	}
	return removed
}
