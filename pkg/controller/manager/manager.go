// Package manager wires the controllers of cmd/controller: clients,
// informers, leader election, and one loop per reconciled kind.
package manager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/backenddirs"
	"kubestash.dev/kubestash/pkg/controller/backupconfiguration"
	"kubestash.dev/kubestash/pkg/controller/backupsession"
	"kubestash.dev/kubestash/pkg/controller/backupstorage"
	"kubestash.dev/kubestash/pkg/controller/executor"
	"kubestash.dev/kubestash/pkg/controller/lookup"
	"kubestash.dev/kubestash/pkg/controller/loop"
	"kubestash.dev/kubestash/pkg/controller/metrics"
	"kubestash.dev/kubestash/pkg/controller/restoresession"
	"kubestash.dev/kubestash/pkg/controller/unlock"
	"kubestash.dev/kubestash/pkg/controller/wipeout"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned/scheme"
	"kubestash.dev/kubestash/pkg/storagebackend"
)

// Options configure the controller manager.
type Options struct {
	Config *rest.Config
	// CatalogServerAccount ("namespace/name") is granted get on each
	// BackupStorage's Secret (access.GrantCatalogSecret).
	CatalogServerAccount string
	// AgentImage is the image of cmd/agent used in the Jobs it creates.
	AgentImage string
	Workers    int
	// LeaderElect runs the controllers only while holding the Lease
	// LeaseNamespace/LeaseName, so that replicas never act twice.
	LeaderElect    bool
	LeaseNamespace string
	LeaseName      string
	// Resync re-reconciles everything this often: dependencies such as
	// Secrets and PVCs are not watched.
	Resync time.Duration
	// PendingTimeout is how long a backup or restore Job's pod may stay
	// Pending before its session fails; 0: executor.DefaultPendingTimeout.
	PendingTimeout time.Duration
	// FinishedJobTTL is how long the backup, retention and restore Jobs
	// of a finished session are kept after they ended; 0 keeps them for
	// as long as their session.
	FinishedJobTTL time.Duration
	// WipeOutDelay is how long after a WipeOut Snapshot is deleted its
	// Repository is looked at for forget marks to clean up, leaving a
	// session's own retention Job time to do it; 0: 30s.
	WipeOutDelay time.Duration
	// MetricsAddr is where /metrics, /healthz and /readyz are served
	// (host:port); empty: nowhere.
	MetricsAddr string
	// LocalBackendDirs says where local BackupStorages may be: the
	// controller writes their metadata.yaml and mounts them into Jobs.
	LocalBackendDirs backenddirs.Policy
}

// Run runs the controllers until ctx ends, and returns once every worker
// has returned. With leader election, they run only while this process
// holds the Lease, and the Lease is released only after they stopped: a
// new leader never starts while a reconcile of this one still writes.
func Run(ctx context.Context, o Options) error {
	logger := klog.FromContext(ctx)
	cfg := rest.CopyConfig(o.Config)
	cfg.Wrap(metrics.WrapTransport)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	client, err := versioned.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubestash client: %w", err)
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubestash-controller"})

	// Ready: standing by for the Lease, or leading with synced caches.
	var syncing atomic.Bool
	if o.MetricsAddr != "" {
		go func() {
			err := metrics.Serve(ctx, o.MetricsAddr, func() error {
				if syncing.Load() {
					return errors.New("informer caches are not synced yet")
				}
				return nil
			})
			if err != nil {
				logger.Error(err, "Metrics and health endpoints stopped")
			}
		}()
	}
	run := func(ctx context.Context) error {
		syncing.Store(true)
		defer syncing.Store(false)
		c, err := build(o, kube, client, recorder)
		if err != nil {
			return err
		}
		return c.run(ctx, func() { syncing.Store(false) })
	}
	if !o.LeaderElect {
		return run(ctx)
	}

	id, err := os.Hostname()
	if err != nil {
		return err
	}
	id = fmt.Sprintf("%s_%d", id, os.Getpid())
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: o.LeaseNamespace, Name: o.LeaseName},
		Client:     kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id, EventRecorder: recorder},
	}
	// The elector's context ends only once the controllers stopped, so
	// that ReleaseOnCancel never hands the Lease over under a running
	// reconcile; losing the Lease stops them and ends Run with an error.
	electCtx, stopElecting := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElecting()
	var (
		runErr  error
		stopped = make(chan struct{})
		leading atomic.Bool
	)
	go func() {
		<-ctx.Done()
		if leading.Load() {
			<-stopped
		}
		stopElecting()
	}()
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            o.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				leading.Store(true)
				// Stop on shutdown or when the Lease is lost.
				wctx, cancel := context.WithCancel(ctx)
				defer cancel()
				context.AfterFunc(lctx, cancel)
				runErr = run(wctx)
				close(stopped)
				// Every worker returned: the Lease may go.
				stopElecting()
			},
			OnStoppedLeading: func() { logger.Info("Stopped leading", "identity", id) },
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	elector.Run(electCtx)
	if !leading.Load() {
		return nil // shut down while standing by
	}
	<-stopped
	if runErr != nil {
		return runErr
	}
	if ctx.Err() == nil {
		return errors.New("lost the leader Lease")
	}
	return nil
}

// controllers are the informers and loops of one leadership term.
type controllers struct {
	factories []interface {
		Start(stopCh <-chan struct{})
		Shutdown()
	}
	synced []func(stopCh <-chan struct{}) map[string]bool
	loops  []runner
}

type runner struct {
	loop    *loop.Loop
	workers int
}

// build makes the informers and the loops, and registers their handlers.
func build(o Options, kube kubernetes.Interface, client versioned.Interface, recorder record.EventRecorder) (*controllers, error) {
	inf := lookup.NewInformers(kube, client, o.Resync)
	// The reconcilers read from these caches, not from the API; their
	// kube client too, for the accounts and grants they ensure each time.
	reads := lookup.CachedReads(inf, lookup.LiveReads(kube, client))
	kube = lookup.CachedKube(kube, inf.Ours)
	builder := storagebackend.Builder{LocalDirs: o.LocalBackendDirs}
	openBackend := func(ctx context.Context, bs *storagev1alpha1.BackupStorage) (backend.Backend, error) {
		return builder.Open(ctx, kube, bs)
	}
	forget := executor.Forget{Client: client, Kube: kube, Image: o.AgentImage, ServiceAccount: backupsession.BackupServiceAccount,
		ClusterRole: backupsession.BackupClusterRole, LocalDirs: o.LocalBackendDirs}
	wipeOutDelay := o.WipeOutDelay
	if wipeOutDelay == 0 {
		wipeOutDelay = 30 * time.Second
	}

	bcr := &backupconfiguration.Reconciler{Clock: clock.RealClock{}, Kube: kube, Client: client, Recorder: recorder, Reads: reads,
		AgentImage: o.AgentImage, CatalogServerAccount: o.CatalogServerAccount}
	bsto := &backupstorage.Reconciler{Kube: kube, Client: client, Recorder: recorder, Reads: reads,
		Build: builder.Build, CatalogServerAccount: o.CatalogServerAccount}
	bsr := &backupsession.Reconciler{Clock: clock.RealClock{}, Kube: kube, Client: client, Recorder: recorder, Reads: reads,
		AgentImage: o.AgentImage, PendingTimeout: o.PendingTimeout, FinishedJobTTL: o.FinishedJobTTL, OpenBackend: openBackend, LocalDirs: o.LocalBackendDirs}
	rsr := &restoresession.Reconciler{Clock: clock.RealClock{}, Kube: kube, Client: client, Recorder: recorder, Reads: reads,
		PendingTimeout: o.PendingTimeout, FinishedJobTTL: o.FinishedJobTTL, LocalDirs: o.LocalBackendDirs}
	// Deleted WipeOut Snapshots: their Repository's forget marks.
	wor := &wipeout.Reconciler{Kube: kube, Client: client, Recorder: recorder, Reads: reads,
		RetentionComponent: backupsession.RetentionJobComponent, OpenBackend: openBackend, MinAge: wipeOutDelay, Forget: forget}
	// Repositories deleted with deletionPolicy WipeOut: their data, then
	// their finalizer.
	rwr := &wipeout.RepositoryReconciler{Kube: kube, Client: client, Recorder: recorder, Reads: reads, OpenBackend: openBackend}
	// Requests to remove stale restic locks (kubectl kubestash unlock).
	ur := &unlock.Reconciler{Kube: kube, Client: client, Recorder: recorder, Reads: reads, Pods: forget}
	// A claim being deleted waits for every pod that mounts it, finished
	// ones too: the finished Jobs of ours that mount it go.
	claims := inf.Cluster.Core().V1().PersistentVolumeClaims()
	jobs := inf.Ours.Batch().V1().Jobs().Lister()
	releaseClaim := func(ctx context.Context, namespace, name string) error {
		pvc, err := claims.Lister().PersistentVolumeClaims(namespace).Get(name)
		if err != nil || pvc.DeletionTimestamp == nil {
			return nil // gone, or not being deleted
		}
		js, err := jobs.Jobs(namespace).List(labels.Everything())
		if err != nil {
			return err
		}
		return executor.ReleaseClaim(ctx, kube, js, namespace, name)
	}

	claimLoop := loop.New("claims", releaseClaim)
	if _, err := claims.Informer().AddEventHandler(claimLoop.Handler()); err != nil {
		return nil, fmt.Errorf("claims: watch PersistentVolumeClaims: %w", err)
	}
	c := &controllers{loops: []runner{{claimLoop, 1}}}
	for _, n := range []struct {
		new     func() (*loop.Loop, error)
		workers int
	}{
		{func() (*loop.Loop, error) { return backupconfiguration.New(bcr, inf) }, o.Workers},
		{func() (*loop.Loop, error) { return backupsession.New(bsr, inf) }, o.Workers},
		{func() (*loop.Loop, error) { return restoresession.New(rsr, inf) }, o.Workers},
		{func() (*loop.Loop, error) { return backupstorage.New(bsto, inf) }, 1},
		{func() (*loop.Loop, error) { return backupsession.NewRepositoryStatus(bsr, inf) }, 1},
		{func() (*loop.Loop, error) { return wipeout.New(wor, inf, wipeOutDelay) }, 1},
		{func() (*loop.Loop, error) { return wipeout.NewRepositoryController(rwr, inf) }, 1},
		{func() (*loop.Loop, error) { return unlock.New(ur, inf) }, 1},
	} {
		l, err := n.new()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l.Name, err)
		}
		c.loops = append(c.loops, runner{l, n.workers})
	}
	c.factories = append(c.factories, inf.Catalog, inf.Ours, inf.Cluster)
	c.synced = append(c.synced, typeNames(inf.Catalog.WaitForCacheSync), typeNames(inf.Ours.WaitForCacheSync), typeNames(inf.Cluster.WaitForCacheSync))
	return c, nil
}

// run starts the informers, waits for their caches (an error if one does
// not sync before ctx ends), calls synced, runs the loops until ctx ends
// and returns once every worker returned.
func (c *controllers) run(ctx context.Context, synced func()) error {
	for _, f := range c.factories {
		f.Start(ctx.Done())
	}
	defer func() {
		for _, f := range c.factories {
			f.Shutdown()
		}
	}()
	for _, wait := range c.synced {
		for typ, ok := range wait(ctx.Done()) {
			if !ok {
				return fmt.Errorf("the informer of %s did not sync", typ)
			}
		}
	}
	synced()
	klog.FromContext(ctx).Info("Controllers started")
	var wg sync.WaitGroup
	for _, r := range c.loops {
		wg.Go(func() { r.loop.Run(ctx, r.workers) })
	}
	wg.Wait()
	return nil
}

// typeNames adapts a factory's WaitForCacheSync to report types by name.
func typeNames[K comparable](wait func(<-chan struct{}) map[K]bool) func(<-chan struct{}) map[string]bool {
	return func(stop <-chan struct{}) map[string]bool {
		out := map[string]bool{}
		for k, ok := range wait(stop) {
			out[fmt.Sprint(k)] = ok
		}
		return out
	}
}
