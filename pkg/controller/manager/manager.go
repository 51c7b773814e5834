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

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
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
	informers "kubestash.dev/kubestash/pkg/generated/informers/externalversions"
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
	c := &controllers{}
	factory := informers.NewSharedInformerFactory(client, o.Resync)
	// Our Jobs and CronJobs, by the label every one of them has.
	kubeFactory := kubeinformers.NewSharedInformerFactoryWithOptions(kube, o.Resync, kubeinformers.WithTweakListOptions(func(lo *metav1.ListOptions) {
		lo.LabelSelector = storagev1alpha1.LabelManagedBy + "=" + storagev1alpha1.LabelManagedByValue
	}))
	// Namespaces and PersistentVolumeClaims.
	claimFactory := kubeinformers.NewSharedInformerFactory(kube, o.Resync)
	// The reconcilers read from these caches, not from the API; their
	// kube client too, for the accounts and grants they ensure each time.
	reads := lookup.CachedReads(lookup.Informers{Catalog: factory, Ours: kubeFactory, Cluster: claimFactory}, lookup.LiveReads(kube, client))
	kube = lookup.CachedKube(kube, kubeFactory)
	bcInformer := factory.Core().V1alpha1().BackupConfigurations()
	builder := storagebackend.Builder{LocalDirs: o.LocalBackendDirs}
	openBackend := func(ctx context.Context, bs *storagev1alpha1.BackupStorage) (backend.Backend, error) {
		return builder.Open(ctx, kube, bs)
	}
	bcr := &backupconfiguration.Reconciler{Clock: clock.RealClock{}, Kube: kube, Client: client, Recorder: recorder, AgentImage: o.AgentImage, CatalogServerAccount: o.CatalogServerAccount, Reads: reads}
	bcLoop := loop.New("backupconfiguration", bcr.Reconcile)
	if _, err := bcInformer.Informer().AddEventHandler(bcLoop.Handler()); err != nil {
		return nil, fmt.Errorf("watch BackupConfigurations: %w", err)
	}
	// A trigger CronJob changed or deleted by someone else, or a target
	// claim that comes or goes: its configuration now, not at the next
	// resync.
	byOwner := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if cj, ok := obj.(*batchv1.CronJob); ok {
			if ref := metav1.GetControllerOf(cj); ref != nil && ref.Kind == "BackupConfiguration" {
				bcLoop.Add(cj.Namespace + "/" + ref.Name)
			}
		}
	}
	if _, err := kubeFactory.Batch().V1().CronJobs().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(old, cur any) {
			if changed(old, cur) {
				byOwner(cur)
			}
		},
		DeleteFunc: byOwner,
	}); err != nil {
		return nil, fmt.Errorf("watch CronJobs: %w", err)
	}
	byTarget := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		pvc, ok := obj.(*corev1.PersistentVolumeClaim)
		if !ok {
			return
		}
		bcs, err := bcInformer.Lister().BackupConfigurations(pvc.Namespace).List(labels.Everything())
		if err != nil {
			return
		}
		for _, bc := range bcs {
			if t := bc.Spec.Target; t != nil && t.Kind == "PersistentVolumeClaim" && t.Name == pvc.Name {
				bcLoop.Add(bc.Namespace + "/" + bc.Name)
			}
		}
	}
	if _, err := claimFactory.Core().V1().PersistentVolumeClaims().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: byTarget, DeleteFunc: byTarget,
		UpdateFunc: func(old, cur any) {
			if o, ok := old.(*corev1.PersistentVolumeClaim); ok && o.DeletionTimestamp == nil {
				if c, ok := cur.(*corev1.PersistentVolumeClaim); ok && c.DeletionTimestamp != nil {
					byTarget(cur)
				}
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("watch PersistentVolumeClaims: %w", err)
	}
	// A storage, policy or addon that changes can change every
	// configuration that refers to it.
	all := cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { enqueueAll(bcInformer.Lister().List, bcLoop) },
		UpdateFunc: func(old, cur any) {
			if changed(old, cur) {
				enqueueAll(bcInformer.Lister().List, bcLoop)
			}
		},
		DeleteFunc: func(any) { enqueueAll(bcInformer.Lister().List, bcLoop) },
	}
	for _, inf := range []cache.SharedIndexInformer{
		factory.Storage().V1alpha1().BackupStorages().Informer(),
		factory.Storage().V1alpha1().RetentionPolicies().Informer(),
		factory.Addons().V1alpha1().Addons().Informer(),
	} {
		if _, err := inf.AddEventHandler(all); err != nil {
			return nil, fmt.Errorf("watch dependencies: %w", err)
		}
	}

	// BackupStorages: check and initialize each; the resync refreshes
	// the repository list.
	bsto := &backupstorage.Reconciler{Kube: kube, Client: client, Build: builder.Build, CatalogServerAccount: o.CatalogServerAccount, Recorder: recorder, Reads: reads}
	stoLoop := loop.New("backupstorage", bsto.Reconcile)
	if _, err := factory.Storage().V1alpha1().BackupStorages().Informer().AddEventHandler(stoLoop.Handler()); err != nil {
		return nil, fmt.Errorf("watch BackupStorages: %w", err)
	}

	// BackupSessions: their own changes, their Snapshots' (the agent
	// reports there) and their Jobs'.
	bsr := &backupsession.Reconciler{Clock: clock.RealClock{}, Kube: kube, Client: client, Recorder: recorder, AgentImage: o.AgentImage, PendingTimeout: o.PendingTimeout, FinishedJobTTL: o.FinishedJobTTL, Reads: reads,
		OpenBackend: openBackend, LocalDirs: o.LocalBackendDirs}
	bsLoop := loop.New("backupsession", bsr.Reconcile)
	if _, err := factory.Catalog().V1alpha1().BackupSessions().Informer().AddEventHandler(bsLoop.Handler()); err != nil {
		return nil, fmt.Errorf("watch BackupSessions: %w", err)
	}
	bySession := func(obj any) {
		if s, ok := obj.(*catalogv1alpha1.Snapshot); ok && s.Spec.BackupSession != "" {
			bsLoop.Add(s.Namespace + "/" + s.Spec.BackupSession)
		}
	}
	if _, err := factory.Catalog().V1alpha1().Snapshots().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: bySession, DeleteFunc: bySession,
		UpdateFunc: func(old, cur any) {
			if changed(old, cur) {
				bySession(cur)
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("watch Snapshots: %w", err)
	}
	// Deleted Snapshots: their Repository's count, size and recent
	// list at once (their session, if still there, is over and looks
	// no more).
	repoLoop := loop.New("repositorystatus", bsr.RefreshRepository)
	if _, err := factory.Catalog().V1alpha1().Snapshots().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if s, ok := obj.(*catalogv1alpha1.Snapshot); ok && s.Spec.Repository != "" {
				repoLoop.Add(s.Namespace + "/" + s.Spec.Repository)
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("watch Snapshots: %w", err)
	}
	// Deleted WipeOut Snapshots: their Repository's forget marks, a
	// moment later; every Repository once at start, for deletions
	// made while no controller ran.
	wipeOutDelay := o.WipeOutDelay
	if wipeOutDelay == 0 {
		wipeOutDelay = 30 * time.Second
	}
	wor := &wipeout.Reconciler{Kube: kube, Client: client, Recorder: recorder, RetentionComponent: backupsession.RetentionJobComponent, Reads: reads,
		OpenBackend: openBackend, MinAge: wipeOutDelay,
		Forget: executor.Forget{Client: client, Kube: kube, Image: o.AgentImage, ServiceAccount: backupsession.BackupServiceAccount, ClusterRole: backupsession.BackupClusterRole,
			LocalDirs: o.LocalBackendDirs}}
	woLoop := loop.New("wipeout", wor.Reconcile)
	if _, err := factory.Catalog().V1alpha1().Snapshots().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if s, ok := obj.(*catalogv1alpha1.Snapshot); ok && s.Spec.DeletionPolicy == catalogv1alpha1.DeletionPolicyWipeOut && s.Spec.Repository != "" {
				woLoop.AddAfter(s.Namespace+"/"+s.Spec.Repository, wipeOutDelay)
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("watch Snapshots: %w", err)
	}
	if _, err := factory.Catalog().V1alpha1().Repositories().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
				woLoop.AddAfter(key, wipeOutDelay)
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("watch Repositories: %w", err)
	}
	// Repositories deleted with deletionPolicy WipeOut: their data,
	// then their finalizer.
	rwr := &wipeout.RepositoryReconciler{Kube: kube, Client: client, Recorder: recorder, OpenBackend: openBackend, Reads: reads}
	rwLoop := loop.New("repositorywipeout", rwr.Reconcile)
	if _, err := factory.Catalog().V1alpha1().Repositories().Informer().AddEventHandler(rwLoop.Handler()); err != nil {
		return nil, fmt.Errorf("watch Repositories: %w", err)
	}
	// Requests to remove stale restic locks (kubectl kubestash unlock).
	ur := &unlock.Reconciler{Kube: kube, Client: client, Recorder: recorder, Reads: reads,
		Pods: executor.Forget{Client: client, Kube: kube, Image: o.AgentImage, ServiceAccount: backupsession.BackupServiceAccount, ClusterRole: backupsession.BackupClusterRole,
			LocalDirs: o.LocalBackendDirs}}
	unlockLoop := loop.New("unlock", ur.Reconcile)
	if _, err := factory.Catalog().V1alpha1().Repositories().Informer().AddEventHandler(unlockLoop.Handler()); err != nil {
		return nil, fmt.Errorf("watch Repositories: %w", err)
	}
	rsr := &restoresession.Reconciler{Clock: clock.RealClock{}, Kube: kube, Client: client, Recorder: recorder, PendingTimeout: o.PendingTimeout, FinishedJobTTL: o.FinishedJobTTL, LocalDirs: o.LocalBackendDirs, Reads: reads}
	rsLoop := loop.New("restoresession", rsr.Reconcile)
	if _, err := factory.Catalog().V1alpha1().RestoreSessions().Informer().AddEventHandler(rsLoop.Handler()); err != nil {
		return nil, fmt.Errorf("watch RestoreSessions: %w", err)
	}
	byJob := func(obj any) {
		j, ok := obj.(*batchv1.Job)
		if !ok {
			return
		}
		switch j.Labels[storagev1alpha1.LabelComponent] {
		case "kubestash-backup", backupsession.RetentionJobComponent:
			bsLoop.Add(j.Namespace + "/" + j.Labels[catalogv1alpha1.LabelInvokerName])
		case "kubestash-restore":
			rsLoop.Add(j.Namespace + "/" + j.Labels[catalogv1alpha1.LabelInvokerName])
		}
	}
	if _, err := kubeFactory.Batch().V1().Jobs().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: byJob, DeleteFunc: byJob,
		UpdateFunc: func(old, cur any) {
			if changed(old, cur) {
				byJob(cur)
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("watch Jobs: %w", err)
	}

	// A claim being deleted waits for every pod that mounts it, finished
	// ones too: the finished Jobs of ours that mount it go.
	claims := claimFactory.Core().V1().PersistentVolumeClaims()
	jobLister := kubeFactory.Batch().V1().Jobs().Lister()
	claimLoop := loop.New("claims", func(ctx context.Context, namespace, name string) error {
		pvc, err := claims.Lister().PersistentVolumeClaims(namespace).Get(name)
		if err != nil || pvc.DeletionTimestamp == nil {
			return nil // gone, or not being deleted
		}
		jobs, err := jobLister.Jobs(namespace).List(labels.Everything())
		if err != nil {
			return err
		}
		return executor.ReleaseClaim(ctx, kube, jobs, namespace, name)
	})
	if _, err := claims.Informer().AddEventHandler(claimLoop.Handler()); err != nil {
		return nil, fmt.Errorf("watch PersistentVolumeClaims: %w", err)
	}

	c.factories = append(c.factories, factory, kubeFactory, claimFactory)
	c.synced = append(c.synced, typeNames(factory.WaitForCacheSync), typeNames(kubeFactory.WaitForCacheSync), typeNames(claimFactory.WaitForCacheSync))
	c.loops = []runner{
		{bcLoop, o.Workers}, {bsLoop, o.Workers}, {rsLoop, o.Workers},
		{stoLoop, 1}, {woLoop, 1}, {rwLoop, 1}, {unlockLoop, 1}, {repoLoop, 1}, {claimLoop, 1},
	}
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

// changed tells a real update from an informer's resync, which hands the
// same object again: a configuration is reconciled at its own resync, not
// once more for each of its dependencies'.
func changed(old, cur any) bool {
	o, err1 := meta.Accessor(old)
	c, err2 := meta.Accessor(cur)
	return err1 != nil || err2 != nil || o.GetResourceVersion() != c.GetResourceVersion()
}

type lister[T any] func(labels.Selector) ([]T, error)

func enqueueAll[T interface {
	GetNamespace() string
	GetName() string
}](list lister[T], l *loop.Loop) {
	objs, err := list(labels.Everything())
	if err != nil {
		return
	}
	for _, o := range objs {
		l.Add(o.GetNamespace() + "/" + o.GetName())
	}
}
