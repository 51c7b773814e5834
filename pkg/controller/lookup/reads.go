package lookup

import (
	"context"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	addonsv1alpha1 "kubestash.dev/kubestash/pkg/apis/addons/v1alpha1"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	informers "kubestash.dev/kubestash/pkg/generated/informers/externalversions"
)

// Reads are the reads of the reconcilers, kind by kind: from the
// controller's informers (Cached), or from the API (LiveReads, for a
// reconciler built without informers). Secrets are never cached: the
// controller does not watch them.
type Reads struct {
	BackupConfigurations Getter[*corev1alpha1.BackupConfiguration]
	BackupSessions       Getter[*catalogv1alpha1.BackupSession]
	RestoreSessions      Getter[*catalogv1alpha1.RestoreSession]
	Repositories         Getter[*catalogv1alpha1.Repository]
	BackupStorages       Getter[*storagev1alpha1.BackupStorage]
	RetentionPolicies    Getter[*storagev1alpha1.RetentionPolicy]
	Addons               Getter[*addonsv1alpha1.Addon]
	Namespaces           Getter[*corev1.Namespace]
	Claims               Getter[*corev1.PersistentVolumeClaim]
	CronJobs             Getter[*batchv1.CronJob]
	Jobs                 Getter[*batchv1.Job]
	// ListJobs lists the Jobs of a namespace that selector matches.
	ListJobs func(ctx context.Context, namespace string, selector labels.Selector) ([]*batchv1.Job, error)
	// ListCronJobs lists the CronJobs of a namespace that selector matches.
	ListCronJobs func(ctx context.Context, namespace string, selector labels.Selector) ([]*batchv1.CronJob, error)
	// ListRepositories lists the Repositories of every namespace.
	ListRepositories func(ctx context.Context) ([]*catalogv1alpha1.Repository, error)
}

// LiveReads reads everything from the API.
func LiveReads(kube kubernetes.Interface, client versioned.Interface) *Reads {
	return &Reads{
		BackupConfigurations: Live(func(ns string) Client[*corev1alpha1.BackupConfiguration] {
			return client.CoreV1alpha1().BackupConfigurations(ns)
		}),
		BackupSessions: Live(func(ns string) Client[*catalogv1alpha1.BackupSession] {
			return client.CatalogV1alpha1().BackupSessions(ns)
		}),
		RestoreSessions: Live(func(ns string) Client[*catalogv1alpha1.RestoreSession] {
			return client.CatalogV1alpha1().RestoreSessions(ns)
		}),
		Repositories: Live(func(ns string) Client[*catalogv1alpha1.Repository] { return client.CatalogV1alpha1().Repositories(ns) }),
		BackupStorages: Live(func(ns string) Client[*storagev1alpha1.BackupStorage] {
			return client.StorageV1alpha1().BackupStorages(ns)
		}),
		RetentionPolicies: Live(func(ns string) Client[*storagev1alpha1.RetentionPolicy] {
			return client.StorageV1alpha1().RetentionPolicies(ns)
		}),
		Addons:     Live(func(string) Client[*addonsv1alpha1.Addon] { return client.AddonsV1alpha1().Addons() }),
		Namespaces: Live(func(string) Client[*corev1.Namespace] { return kube.CoreV1().Namespaces() }),
		Claims:     Live(func(ns string) Client[*corev1.PersistentVolumeClaim] { return kube.CoreV1().PersistentVolumeClaims(ns) }),
		CronJobs:   Live(func(ns string) Client[*batchv1.CronJob] { return kube.BatchV1().CronJobs(ns) }),
		Jobs:       Live(func(ns string) Client[*batchv1.Job] { return kube.BatchV1().Jobs(ns) }),
		ListJobs: func(ctx context.Context, ns string, selector labels.Selector) ([]*batchv1.Job, error) {
			l, err := kube.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
			if err != nil {
				return nil, err
			}
			return pointers(l.Items), nil
		},
		ListCronJobs: func(ctx context.Context, ns string, selector labels.Selector) ([]*batchv1.CronJob, error) {
			l, err := kube.BatchV1().CronJobs(ns).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
			if err != nil {
				return nil, err
			}
			return pointers(l.Items), nil
		},
		ListRepositories: func(ctx context.Context) ([]*catalogv1alpha1.Repository, error) {
			l, err := client.CatalogV1alpha1().Repositories(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, err
			}
			return pointers(l.Items), nil
		},
	}
}

// pointers are pointers to the items of a list, as a lister returns them.
func pointers[T any](items []T) []*T {
	out := make([]*T, 0, len(items))
	for i := range items {
		out = append(out, &items[i])
	}
	return out
}

// Informers are the informer factories the cached reads come from.
type Informers struct {
	// Catalog has every kind of ours.
	Catalog informers.SharedInformerFactory
	// Ours has the Jobs and CronJobs labelled as made by the controller.
	Ours kubeinformers.SharedInformerFactory
	// Cluster has Namespaces and PersistentVolumeClaims.
	Cluster kubeinformers.SharedInformerFactory
}

// Ours selects what the controller makes: its Jobs, CronJobs, accounts
// and grants all carry this label.
var Ours = labels.SelectorFromSet(labels.Set{storagev1alpha1.LabelManagedBy: storagev1alpha1.LabelManagedByValue})

// NewInformers makes the controller's informer factories over kube and
// client, each resyncing every resync.
func NewInformers(kube kubernetes.Interface, client versioned.Interface, resync time.Duration) Informers {
	return Informers{
		Catalog: informers.NewSharedInformerFactory(client, resync),
		Ours: kubeinformers.NewSharedInformerFactoryWithOptions(kube, resync, kubeinformers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.LabelSelector = Ours.String()
		})),
		Cluster: kubeinformers.NewSharedInformerFactory(kube, resync),
	}
}

// CachedReads reads from the informers of f, and live (from LiveReads)
// what their caches do not have yet. Using a lister registers its
// informer, so call it before the factories start.
func CachedReads(f Informers, live *Reads) *Reads {
	bc := f.Catalog.Core().V1alpha1().BackupConfigurations().Lister()
	bs := f.Catalog.Catalog().V1alpha1().BackupSessions().Lister()
	rs := f.Catalog.Catalog().V1alpha1().RestoreSessions().Lister()
	repos := f.Catalog.Catalog().V1alpha1().Repositories().Lister()
	storages := f.Catalog.Storage().V1alpha1().BackupStorages().Lister()
	policies := f.Catalog.Storage().V1alpha1().RetentionPolicies().Lister()
	addons := f.Catalog.Addons().V1alpha1().Addons().Lister()
	namespaces := f.Cluster.Core().V1().Namespaces().Lister()
	claims := f.Cluster.Core().V1().PersistentVolumeClaims().Lister()
	cronJobs := f.Ours.Batch().V1().CronJobs().Lister()
	jobs := f.Ours.Batch().V1().Jobs().Lister()
	return &Reads{
		BackupConfigurations: Cached(func(ns, name string) (*corev1alpha1.BackupConfiguration, error) {
			return bc.BackupConfigurations(ns).Get(name)
		}, live.BackupConfigurations),
		BackupSessions: Cached(func(ns, name string) (*catalogv1alpha1.BackupSession, error) { return bs.BackupSessions(ns).Get(name) }, live.BackupSessions),
		RestoreSessions: Cached(func(ns, name string) (*catalogv1alpha1.RestoreSession, error) {
			return rs.RestoreSessions(ns).Get(name)
		}, live.RestoreSessions),
		Repositories: Cached(func(ns, name string) (*catalogv1alpha1.Repository, error) { return repos.Repositories(ns).Get(name) }, live.Repositories),
		BackupStorages: Cached(func(ns, name string) (*storagev1alpha1.BackupStorage, error) {
			return storages.BackupStorages(ns).Get(name)
		}, live.BackupStorages),
		RetentionPolicies: Cached(func(ns, name string) (*storagev1alpha1.RetentionPolicy, error) {
			return policies.RetentionPolicies(ns).Get(name)
		}, live.RetentionPolicies),
		Addons:     Cached(func(_, name string) (*addonsv1alpha1.Addon, error) { return addons.Get(name) }, live.Addons),
		Namespaces: Cached(func(_, name string) (*corev1.Namespace, error) { return namespaces.Get(name) }, live.Namespaces),
		Claims: Cached(func(ns, name string) (*corev1.PersistentVolumeClaim, error) {
			return claims.PersistentVolumeClaims(ns).Get(name)
		}, live.Claims),
		CronJobs: Cached(func(ns, name string) (*batchv1.CronJob, error) { return cronJobs.CronJobs(ns).Get(name) }, live.CronJobs),
		Jobs:     Cached(func(ns, name string) (*batchv1.Job, error) { return jobs.Jobs(ns).Get(name) }, live.Jobs),
		// Every Job of ours is in the cache (the informer selects by the
		// managed-by label every one of them has); one created a moment ago
		// may be missing, which the callers tolerate (they look again).
		ListJobs: func(_ context.Context, ns string, selector labels.Selector) ([]*batchv1.Job, error) {
			return jobs.Jobs(ns).List(selector)
		},
		ListCronJobs: func(_ context.Context, ns string, selector labels.Selector) ([]*batchv1.CronJob, error) {
			return cronJobs.CronJobs(ns).List(selector)
		},
		ListRepositories: func(context.Context) ([]*catalogv1alpha1.Repository, error) {
			return repos.List(labels.Everything())
		},
	}
}
