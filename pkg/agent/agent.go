// Package agent is what runs inside the backup, restore and trigger Jobs:
// it reads the sessions and the catalog through the API, runs restic
// (pkg/restic) and reports into the status of Snapshots and
// RestoreSessions. cmd/agent wraps it in a command line with upstream's
// argument contract (the pvc-backup and pvc-restore Functions).
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/restic"
	"kubestash.dev/kubestash/pkg/secretenv"
)

// Defaults of the pvc addon (upstream's Addon pvc-addon).
const (
	DefaultDataDir    = "/kubestash-data"
	DefaultScratchDir = "/kubestash-tmp"
	// DefaultHost is restic's --host for every backup. Upstream's value is
	// not visible; restores go by snapshot id, so it only has to be stable
	// (restic picks the parent snapshot by host and paths).
	DefaultHost = "host-0"
	// ComponentDump is the one component of a stand-alone PVC backup.
	ComponentDump = "dump"
	// KeyResticPassword is the key of the encryption Secret.
	KeyResticPassword = secretenv.KeyResticPassword
	// Keys of an S3 storage Secret.
	KeyAccessKeyID     = secretenv.KeyAccessKeyID
	KeySecretAccessKey = secretenv.KeySecretAccessKey
	KeyCACertData      = secretenv.KeyCACertData

	// MessageTerminated is a component's error when the agent stops
	// before restic finished: the session's deadline or a signal (the Job
	// was deleted, the pod evicted, activeDeadlineSeconds). Upstream's
	// wording.
	MessageTerminated = "deadline exceeded or signal terminated"
)

// Agent holds the clients and settings shared by the subcommands.
type Agent struct {
	Kube kubernetes.Interface
	// Client reaches the catalog (catalog.kubestash.com, through the
	// aggregated server) and the CRDs (core, storage).
	Client versioned.Interface
	// Root, when set, is put before every absolute container path the
	// agent touches on disk (the data folders, a local BackupStorage's
	// mountPath, the scratch folder), as if the agent ran chrooted there;
	// what it records (summary.hostPath) keeps the container path. Unit
	// tests set it to a temporary folder. Empty, as in a Pod: container
	// paths are used as they are.
	Root string
	// PodNamespace is the namespace of the Pod the agent runs in; restic
	// locks are checked against the Pods there (removeDeadLocks). Empty
	// (a developer's shell): no lock is ever taken for dead.
	PodNamespace string
	// Hostname is this Pod's hostname, which restic writes into its locks;
	// default os.Hostname(). A lock of this host is restic's own business
	// (restic unlock checks its PID).
	Hostname string
	// Restic holds restic settings (Binary, ProgressFPS, RetryLock, ...);
	// the agent fills in location, password, scratch dir and cache.
	Restic restic.Options
	// Host is restic's --host for backups; default DefaultHost.
	Host string
	// ProgressInterval is how often progress is written into the status
	// while restic runs; default 5s (the issue asks for at most 10s).
	ProgressInterval time.Duration
	// SnapshotWait is how long backup waits for the controller to
	// create a Snapshot it needs; default 1m.
	SnapshotWait time.Duration
	// FinalStatusWait is how long the final status write of a backup
	// keeps trying through an unavailable catalog; default 10m. The
	// catalog lives in the backup backend, so the outage that failed a
	// backup often keeps its verdict from being recorded as well.
	FinalStatusWait time.Duration
	// LookupEnv reads the environment (Secrets passed by secretKeyRef);
	// default os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// EnvBackendOutageTimeout, in the agent's environment, is how long restic
// may keep retrying a storage that stopped answering in the middle of a
// run (restic.Options.OutageTimeout, a Go duration such as "2m"). Set it
// for a backup Job with the variables of the session's addon task.
const EnvBackendOutageTimeout = "KUBESTASH_BACKEND_OUTAGE_TIMEOUT"

// NewForConfig makes an Agent with clients for cfg and the settings of
// its environment (EnvBackendOutageTimeout).
func NewForConfig(cfg *rest.Config) (*Agent, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "kubestash-agent"
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	client, err := versioned.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubestash client: %w", err)
	}
	a := &Agent{Kube: kube, Client: client}
	if v := os.Getenv(EnvBackendOutageTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%s=%q: want a positive duration such as 2m", EnvBackendOutageTimeout, v)
		}
		a.Restic.OutageTimeout = d
	}
	return a, nil
}

func (a *Agent) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Agent) host() string {
	if a.Host != "" {
		return a.Host
	}
	return DefaultHost
}

func (a *Agent) progressInterval() time.Duration {
	if a.ProgressInterval > 0 {
		return a.ProgressInterval
	}
	return 5 * time.Second
}

// access is what restic needs to open the repositories of one Repository.
type access struct {
	location restic.Location // without Path
	password string
	// base is Repository.spec.path, below which the components live.
	base string
}

// repoAccess resolves the storage, its Secret and the encryption Secret of
// a Repository. encSecret falls back to the Repository's own; defaultNS is
// the namespace of a secret reference without one. Errors name Secrets and
// keys, never their values.
func (a *Agent) repoAccess(ctx context.Context, repo *catalogv1alpha1.Repository, encSecret *kmapi.ObjectReference, defaultNS string) (*access, error) {
	ref := repo.Spec.StorageRef
	if ref.Name == "" {
		return nil, fmt.Errorf("repository %s/%s has no storageRef", repo.Namespace, repo.Name)
	}
	if ref.Namespace == "" {
		ref.Namespace = repo.Namespace
	}
	bs, err := a.Client.StorageV1alpha1().BackupStorages(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get BackupStorage %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	loc, err := a.location(ctx, bs, repo.Name)
	if err != nil {
		return nil, err
	}
	if encSecret == nil || encSecret.Name == "" {
		encSecret = repo.Spec.EncryptionSecret
		defaultNS = repo.Namespace
	}
	if encSecret == nil || encSecret.Name == "" {
		return nil, fmt.Errorf("no encryption secret for repository %s/%s", repo.Namespace, repo.Name)
	}
	ns := encSecret.Namespace
	if ns == "" {
		ns = defaultNS
	}
	data, err := a.secretData(ctx, "encryption secret", repo.Name, ns, encSecret.Name, []string{KeyResticPassword}, nil)
	if err != nil {
		return nil, err
	}
	pw := string(data[KeyResticPassword])
	if pw == "" {
		return nil, fmt.Errorf("encryption secret %s/%s has no key %s", ns, encSecret.Name, KeyResticPassword)
	}
	return &access{location: loc, password: pw, base: repo.Spec.Path}, nil
}

// secretData returns keys (required) and optional keys of Secret ns/name
// as repository's: from the environment the controller filled by
// secretKeyRef (pkg/secretenv) when it did, else read through the API (a
// Secret of another namespace, which no secretKeyRef can name). A missing
// optional key is left out.
func (a *Agent) secretData(ctx context.Context, what, repository, ns, name string, keys, optional []string) (map[string][]byte, error) {
	lookup := a.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	out := map[string][]byte{}
	if _, ok := lookup(secretenv.Name(keys[0], repository)); ok {
		for _, k := range append(append([]string(nil), keys...), optional...) {
			if v, ok := lookup(secretenv.Name(k, repository)); ok {
				out[k] = []byte(v)
			}
		}
		return out, nil
	}
	sec, err := a.Kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get %s %s/%s: %w", what, ns, name, err)
	}
	for _, k := range append(append([]string(nil), keys...), optional...) {
		if v, ok := sec.Data[k]; ok {
			out[k] = v
		}
	}
	return out, nil
}

// location turns a BackupStorage into a restic location (minus the path)
// for repository.
func (a *Agent) location(ctx context.Context, bs *storagev1alpha1.BackupStorage, repository string) (restic.Location, error) {
	st := bs.Spec.Storage
	switch st.Provider {
	case storagev1alpha1.ProviderS3:
		if st.S3 == nil {
			return restic.Location{}, fmt.Errorf("BackupStorage %s/%s: spec.storage.s3 is missing", bs.Namespace, bs.Name)
		}
		s3 := &restic.S3{Endpoint: st.S3.Endpoint, Bucket: st.S3.Bucket, Prefix: st.S3.Prefix, Region: st.S3.Region, InsecureTLS: st.S3.InsecureTLS}
		if st.S3.SecretName != "" {
			data, err := a.secretData(ctx, "storage secret", repository, bs.Namespace, st.S3.SecretName, []string{KeyAccessKeyID, KeySecretAccessKey}, []string{KeyCACertData})
			if err != nil {
				return restic.Location{}, err
			}
			s3.AccessKeyID, s3.SecretAccessKey = string(data[KeyAccessKeyID]), string(data[KeySecretAccessKey])
			if s3.AccessKeyID == "" || s3.SecretAccessKey == "" {
				return restic.Location{}, fmt.Errorf("storage secret %s/%s needs the keys %s and %s", bs.Namespace, st.S3.SecretName, KeyAccessKeyID, KeySecretAccessKey)
			}
			s3.CACertPEM = data[KeyCACertData]
		}
		return restic.Location{Provider: restic.ProviderS3, S3: s3, Connections: st.S3.MaxConnections}, nil
	case storagev1alpha1.ProviderLocal:
		if st.Local == nil || st.Local.MountPath == "" {
			return restic.Location{}, fmt.Errorf("BackupStorage %s/%s: spec.storage.local.mountPath is missing", bs.Namespace, bs.Name)
		}
		// The Job mounts the backend volume at mountPath (subPath is
		// applied by the mount).
		return restic.Location{Provider: restic.ProviderLocal, LocalDir: a.onDisk(st.Local.MountPath), Connections: st.Local.MaxConnections}, nil
	default:
		return restic.Location{}, fmt.Errorf("BackupStorage %s/%s: provider %q is not supported by the agent (s3 and local are)", bs.Namespace, bs.Name, st.Provider)
	}
}

// newRestic opens the restic repository of one component.
func (a *Agent) newRestic(acc *access, componentPath, scratchDir string, enableCache bool) (*restic.Repo, error) {
	o := a.Restic
	o.Location = acc.location
	o.Location.Path = path.Join(acc.base, componentPath)
	o.Password = acc.password
	o.ScratchDir = a.onDisk(scratchDir)
	o.EnableCache = enableCache
	return restic.New(o)
}

// componentPath is where a component's restic repository lives below the
// Repository: repository/<version>/<session>/<component>.
func componentPath(version, session, component string) string {
	if version == "" {
		version = "v1"
	}
	return path.Join("repository", version, session, component)
}

// errorMessage is what a status shows for err: upstream's wording when the
// agent was stopped, else the error (restic errors carry restic's last
// stderr lines, already redacted).
func errorMessage(ctx context.Context, err error) string {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return MessageTerminated
	}
	return err.Error()
}

// statusContext is for status writes that must happen even when ctx ended
// (the final Failed after SIGTERM): it keeps ctx's values, drops its
// cancellation and bounds the write.
func statusContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}

// finalWrite makes the last status write of a run, which must not be
// lost. While ctx lives it keeps trying through an unavailable catalog (a
// 503 while the backend is down, the API unreachable) for up to
// FinalStatusWait: a verdict recorded late beats a Job that ends with
// nothing recorded and leaves only "the Job failed" to tell. Once ctx has
// ended (SIGTERM, the session's deadline) it tries on a context of its
// own for a bounded time.
func (a *Agent) finalWrite(ctx context.Context, write func(ctx context.Context) error) error {
	if ctx.Err() == nil {
		wait := a.FinalStatusWait
		if wait <= 0 {
			wait = 10 * time.Minute
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		err := keepTrying(wctx, write)
		cancel()
		if err == nil || ctx.Err() == nil {
			return err
		}
	}
	sctx, cancel := statusContext(ctx)
	defer cancel()
	return retry.OnError(patchBackoff, retriable, func() error { return write(sctx) })
}

// keepTrying calls write until it succeeds, fails for good or ctx ends,
// backing off up to 15s between tries. It returns the last error write
// gave, not ctx's.
func keepTrying(ctx context.Context, write func(ctx context.Context) error) error {
	delay := 500 * time.Millisecond
	var last error
	for {
		err := write(ctx)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			if last == nil {
				last = err
			}
			return last
		case !retriable(err):
			return err
		}
		last = err
		klog.InfoS("Status not written yet; trying again", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return last
		case <-time.After(delay):
		}
		delay = min(2*delay, 15*time.Second)
	}
}

// patchBackoff retries status writes through short API or catalog
// hiccups, about 30s in all.
var patchBackoff = wait.Backoff{Steps: 7, Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1}

func retriable(err error) bool {
	return !(apierrors.IsNotFound(err) || apierrors.IsInvalid(err) || apierrors.IsForbidden(err) ||
		apierrors.IsUnauthorized(err) || apierrors.IsBadRequest(err) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded))
}

// mergePatch sends body as a JSON merge patch to the status subresource,
// retrying when retry is set. A merge patch needs no resourceVersion: the
// agent is the only writer of its component, and the controller's writes
// to other fields are not overwritten.
func mergePatch(ctx context.Context, body any, retryIt bool, do func(ctx context.Context, data []byte) error) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	if !retryIt {
		return do(ctx, data)
	}
	return retry.OnError(patchBackoff, retriable, func() error { return do(ctx, data) })
}

func (a *Agent) patchSnapshotComponent(ctx context.Context, ns, name, component string, fields map[string]any, retryIt bool) error {
	body := map[string]any{"status": map[string]any{"components": map[string]any{component: fields}}}
	err := mergePatch(ctx, body, retryIt, func(ctx context.Context, data []byte) error {
		_, err := a.Client.CatalogV1alpha1().Snapshots(ns).Patch(ctx, name, types.MergePatchType, data, metav1.PatchOptions{FieldManager: fieldManager}, "status")
		return err
	})
	if err != nil {
		return fmt.Errorf("patch status of snapshot %s/%s: %w", ns, name, err)
	}
	return nil
}

func (a *Agent) patchRestoreComponent(ctx context.Context, ns, name, component string, fields map[string]any, retryIt bool) error {
	body := map[string]any{"status": map[string]any{"components": map[string]any{component: fields}}}
	err := mergePatch(ctx, body, retryIt, func(ctx context.Context, data []byte) error {
		_, err := a.Client.CatalogV1alpha1().RestoreSessions(ns).Patch(ctx, name, types.MergePatchType, data, metav1.PatchOptions{FieldManager: fieldManager}, "status")
		return err
	})
	if err != nil {
		return fmt.Errorf("patch status of restoresession %s/%s: %w", ns, name, err)
	}
	return nil
}

const fieldManager = "kubestash-agent"

func logDone(what string, start time.Time, kv ...any) {
	klog.InfoS(what, append([]any{"duration", time.Since(start).Round(time.Millisecond)}, kv...)...)
}
