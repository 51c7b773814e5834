// Package manager wires the controllers of cmd/controller: clients,
// informers, leader election, and one loop per reconciled kind.
package manager

import (
	"context"
	"fmt"
	"os"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
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

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/backenddirs"
	"kubestash.dev/kubestash/pkg/controller/backupconfiguration"
	"kubestash.dev/kubestash/pkg/controller/backupsession"
	"kubestash.dev/kubestash/pkg/controller/backupstorage"
	"kubestash.dev/kubestash/pkg/controller/executor"
	"kubestash.dev/kubestash/pkg/controller/loop"
	"kubestash.dev/kubestash/pkg/controller/restoresession"
	"kubestash.dev/kubestash/pkg/controller/unlock"
	"kubestash.dev/kubestash/pkg/controller/wipeout"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned/scheme"
	informers "kubestash.dev/kubestash/pkg/generated/informers/externalversions"
	"kubestash.dev/kubestash/pkg/storages"
)

// Options configure the controller manager.
type Options struct {
	Config *rest.Config
	// CatalogServerAccount ("namespace/name") is granted get on each
	// BackupStorage's Secret (executor.GrantCatalogSecret).
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
	// LocalBackendDirs says where local BackupStorages may be: the
	// controller writes their metadata.yaml and mounts them into Jobs.
	LocalBackendDirs backenddirs.Policy
}

// Run runs the controllers until ctx ends.
func Run(ctx context.Context, o Options) error {
	logger := klog.FromContext(ctx)
	kube, err := kubernetes.NewForConfig(o.Config)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	client, err := versioned.NewForConfig(o.Config)
	if err != nil {
		return fmt.Errorf("kubestash client: %w", err)
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubestash-controller"})

	run := func(ctx context.Context) {
		factory := informers.NewSharedInformerFactory(client, o.Resync)
		bcInformer := factory.Core().V1alpha1().BackupConfigurations()
		builder := storages.Builder{LocalDirs: o.LocalBackendDirs}
		openBackend := func(ctx context.Context, bs *storagev1alpha1.BackupStorage) (backend.Backend, error) {
			return builder.Open(ctx, kube, bs)
		}
		bcr := &backupconfiguration.Reconciler{Kube: kube, Client: client, Recorder: recorder, AgentImage: o.AgentImage, CatalogServerAccount: o.CatalogServerAccount}
		bcLoop := loop.New("backupconfiguration", bcr.Reconcile)
		if _, err := bcInformer.Informer().AddEventHandler(bcLoop.Handler()); err != nil {
			logger.Error(err, "Cannot watch BackupConfigurations")
			return
		}
		// A storage, policy or addon that changes can change every
		// configuration that refers to it.
		all := cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { enqueueAll(bcInformer.Lister().List, bcLoop) },
			UpdateFunc: func(any, any) { enqueueAll(bcInformer.Lister().List, bcLoop) },
			DeleteFunc: func(any) { enqueueAll(bcInformer.Lister().List, bcLoop) },
		}
		for _, inf := range []cache.SharedIndexInformer{
			factory.Storage().V1alpha1().BackupStorages().Informer(),
			factory.Storage().V1alpha1().RetentionPolicies().Informer(),
			factory.Addons().V1alpha1().Addons().Informer(),
		} {
			if _, err := inf.AddEventHandler(all); err != nil {
				logger.Error(err, "Cannot watch dependencies")
				return
			}
		}

		// BackupStorages: check and initialize each; the resync refreshes
		// the repository list.
		bsto := &backupstorage.Reconciler{Kube: kube, Client: client, Build: builder.Build, CatalogServerAccount: o.CatalogServerAccount, Recorder: recorder}
		stoLoop := loop.New("backupstorage", bsto.Reconcile)
		if _, err := factory.Storage().V1alpha1().BackupStorages().Informer().AddEventHandler(stoLoop.Handler()); err != nil {
			logger.Error(err, "Cannot watch BackupStorages")
			return
		}

		// BackupSessions: their own changes, their Snapshots' (the agent
		// reports there) and their Jobs'.
		bsr := &backupsession.Reconciler{Kube: kube, Client: client, Recorder: recorder, AgentImage: o.AgentImage, PendingTimeout: o.PendingTimeout, FinishedJobTTL: o.FinishedJobTTL,
			OpenBackend: openBackend, LocalDirs: o.LocalBackendDirs}
		bsLoop := loop.New("backupsession", bsr.Reconcile)
		if _, err := factory.Catalog().V1alpha1().BackupSessions().Informer().AddEventHandler(bsLoop.Handler()); err != nil {
			logger.Error(err, "Cannot watch BackupSessions")
			return
		}
		bySession := func(obj any) {
			if s, ok := obj.(*catalogv1alpha1.Snapshot); ok && s.Spec.BackupSession != "" {
				bsLoop.Add(s.Namespace + "/" + s.Spec.BackupSession)
			}
		}
		if _, err := factory.Catalog().V1alpha1().Snapshots().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: bySession, UpdateFunc: func(_, o any) { bySession(o) }, DeleteFunc: bySession,
		}); err != nil {
			logger.Error(err, "Cannot watch Snapshots")
			return
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
			logger.Error(err, "Cannot watch Snapshots")
			return
		}
		// Deleted WipeOut Snapshots: their Repository's forget marks, a
		// moment later; every Repository once at start, for deletions
		// made while no controller ran.
		wipeOutDelay := o.WipeOutDelay
		if wipeOutDelay == 0 {
			wipeOutDelay = 30 * time.Second
		}
		wor := &wipeout.Reconciler{Kube: kube, Client: client, Recorder: recorder, RetentionComponent: backupsession.RetentionJobComponent,
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
			logger.Error(err, "Cannot watch Snapshots")
			return
		}
		if _, err := factory.Catalog().V1alpha1().Repositories().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) {
				if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
					woLoop.AddAfter(key, wipeOutDelay)
				}
			},
		}); err != nil {
			logger.Error(err, "Cannot watch Repositories")
			return
		}
		// Repositories deleted with deletionPolicy WipeOut: their data,
		// then their finalizer.
		rwr := &wipeout.RepositoryReconciler{Kube: kube, Client: client, Recorder: recorder, OpenBackend: openBackend}
		rwLoop := loop.New("repositorywipeout", rwr.Reconcile)
		if _, err := factory.Catalog().V1alpha1().Repositories().Informer().AddEventHandler(rwLoop.Handler()); err != nil {
			logger.Error(err, "Cannot watch Repositories")
			return
		}
		go rwLoop.Run(ctx, 1)
		// Requests to remove stale restic locks (kubectl kubestash unlock).
		ur := &unlock.Reconciler{Kube: kube, Client: client, Recorder: recorder,
			Pods: executor.Forget{Client: client, Kube: kube, Image: o.AgentImage, ServiceAccount: backupsession.BackupServiceAccount, ClusterRole: backupsession.BackupClusterRole,
				LocalDirs: o.LocalBackendDirs}}
		unlockLoop := loop.New("unlock", ur.Reconcile)
		if _, err := factory.Catalog().V1alpha1().Repositories().Informer().AddEventHandler(unlockLoop.Handler()); err != nil {
			logger.Error(err, "Cannot watch Repositories")
			return
		}
		go unlockLoop.Run(ctx, 1)
		kubeFactory := kubeinformers.NewSharedInformerFactoryWithOptions(kube, o.Resync, kubeinformers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.LabelSelector = storagev1alpha1.LabelManagedBy + "=" + storagev1alpha1.LabelManagedByValue
		}))
		rsr := &restoresession.Reconciler{Kube: kube, Client: client, Recorder: recorder, PendingTimeout: o.PendingTimeout, FinishedJobTTL: o.FinishedJobTTL, LocalDirs: o.LocalBackendDirs}
		rsLoop := loop.New("restoresession", rsr.Reconcile)
		if _, err := factory.Catalog().V1alpha1().RestoreSessions().Informer().AddEventHandler(rsLoop.Handler()); err != nil {
			logger.Error(err, "Cannot watch RestoreSessions")
			return
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
			AddFunc: byJob, UpdateFunc: func(_, o any) { byJob(o) }, DeleteFunc: byJob,
		}); err != nil {
			logger.Error(err, "Cannot watch Jobs")
			return
		}

		// A claim being deleted waits for every pod that mounts it, finished
		// ones too: the finished Jobs of ours that mount it go.
		claimFactory := kubeinformers.NewSharedInformerFactory(kube, o.Resync)
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
			logger.Error(err, "Cannot watch PersistentVolumeClaims")
			return
		}

		factory.Start(ctx.Done())
		kubeFactory.Start(ctx.Done())
		claimFactory.Start(ctx.Done())
		for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
			if !ok {
				logger.Error(nil, "Informer did not sync", "type", typ)
				return
			}
		}
		kubeFactory.WaitForCacheSync(ctx.Done())
		claimFactory.WaitForCacheSync(ctx.Done())
		logger.Info("Controllers started")
		go bsLoop.Run(ctx, o.Workers)
		go rsLoop.Run(ctx, o.Workers)
		go stoLoop.Run(ctx, 1)
		go woLoop.Run(ctx, 1)
		go repoLoop.Run(ctx, 1)
		go claimLoop.Run(ctx, 1)
		bcLoop.Run(ctx, o.Workers)
		factory.Shutdown()
		kubeFactory.Shutdown()
		claimFactory.Shutdown()
	}

	if !o.LeaderElect {
		run(ctx)
		return nil
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
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            o.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: run,
			OnStoppedLeading: func() { logger.Info("Stopped leading", "identity", id) },
		},
	})
	return nil
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
