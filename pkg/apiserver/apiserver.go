// Package apiserver is the catalog server: an aggregated API server for
// catalog.kubestash.com whose storage is the backup backend, not etcd.
// BackupStorages, the Secrets they name, Namespaces and
// BackupConfigurations come from kube-apiserver through informers.
package apiserver

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/apis/catalog/install"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/backenddirs"
	"kubestash.dev/kubestash/pkg/browse"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/generated/informers/externalversions"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/registry"
	"kubestash.dev/kubestash/pkg/registry/catalog/backupsessionrest"
	"kubestash.dev/kubestash/pkg/registry/catalog/repositoryrest"
	"kubestash.dev/kubestash/pkg/registry/catalog/restoresessionrest"
	"kubestash.dev/kubestash/pkg/registry/catalog/snapshotrest"
	"kubestash.dev/kubestash/pkg/restic"
	"kubestash.dev/kubestash/pkg/storagebackend"
	"kubestash.dev/kubestash/pkg/storagetracker"
	"kubestash.dev/kubestash/pkg/store"
)

// ComponentName names the server in logs, metadata.yaml and the API.
const ComponentName = "kubestash-catalog"

var (
	// Scheme knows the catalog group, internal and v1alpha1.
	Scheme = runtime.NewScheme()
	// Codecs serve the API.
	Codecs = serializer.NewCodecFactory(Scheme)
)

func init() {
	install.Install(Scheme)
	// The generic server needs the meta types (options, Status, discovery)
	// under an empty group.
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	unversioned := schema.GroupVersion{Group: "", Version: "v1"}
	Scheme.AddUnversionedTypes(unversioned,
		&metav1.Status{},
		&metav1.APIVersions{},
		&metav1.APIGroupList{},
		&metav1.APIGroup{},
		&metav1.APIResourceList{},
	)
}

// ExtraConfig is what the catalog server adds to the generic one.
type ExtraConfig struct {
	// PollInterval is how often every backend is scanned for changes made
	// by others.
	PollInterval time.Duration
	// InformerSyncTimeout bounds the wait for BackupStorages, Namespaces
	// and BackupConfigurations at start; 0 waits until the context ends.
	InformerSyncTimeout time.Duration
	// Workers that reconcile BackupStorages.
	Workers int
	// LocalBackendDirs says where local BackupStorages may be; the zero
	// value allows none.
	LocalBackendDirs backenddirs.Policy
	// MaxObjectSize bounds a catalog file and an object written through
	// the API; EventLogBytes bounds the watch history. 0: the store's
	// defaults.
	MaxObjectSize, EventLogBytes int64
	// Browse configures snapshots/files and snapshots/download.
	Browse BrowseConfig
}

// BrowseConfig says how the catalog server runs restic to show what a
// Snapshot holds.
type BrowseConfig struct {
	// ResticBinary is the pinned restic; empty: next to the server's
	// executable, else on PATH.
	ResticBinary string
	// ScratchDir holds restic's cache and temporary files; empty: in the
	// temporary directory.
	ScratchDir string
	// MaxConcurrent bounds the browse requests running at once (more get
	// 429); 0: browse.DefaultMaxConcurrent.
	MaxConcurrent int
}

// Config is the catalog server's configuration.
type Config struct {
	GenericConfig *genericapiserver.RecommendedConfig
	ExtraConfig   ExtraConfig
}

// Server is a running catalog server.
type Server struct {
	GenericAPIServer *genericapiserver.GenericAPIServer
	Catalog          *registry.Catalog
	Storages         *storagetracker.Manager
}

type completedConfig struct {
	GenericConfig genericapiserver.CompletedConfig
	ExtraConfig   *ExtraConfig
	// clientConfig and kubeInformers reach kube-apiserver (--kubeconfig or
	// in-cluster), from the recommended config.
	clientConfig  *restclient.Config
	kubeInformers kubeinformers.SharedInformerFactory
}

// CompletedConfig is a Config with its defaults filled in.
type CompletedConfig struct {
	*completedConfig
}

// Complete fills in the defaults. It changes the receiver.
func (cfg *Config) Complete() CompletedConfig {
	if cfg.ExtraConfig.PollInterval == 0 {
		cfg.ExtraConfig.PollInterval = store.DefaultPollInterval
	}
	if cfg.ExtraConfig.Workers <= 0 {
		cfg.ExtraConfig.Workers = 2
	}
	return CompletedConfig{&completedConfig{
		GenericConfig: cfg.GenericConfig.Complete(),
		ExtraConfig:   &cfg.ExtraConfig,
		clientConfig:  cfg.GenericConfig.ClientConfig,
		kubeInformers: cfg.GenericConfig.SharedInformerFactory,
	}}
}

// New builds the server. It reads the BackupStorages of the cluster first,
// so that every catalog store starts with all of them and readiness means
// "the whole catalog is indexed"; ctx bounds that wait and the life of the
// informers.
func (c completedConfig) New(ctx context.Context) (_ *Server, err error) {
	logger := klog.FromContext(ctx).WithName("catalog")
	if c.clientConfig == nil || c.kubeInformers == nil {
		return nil, fmt.Errorf("no client configuration for kube-apiserver (--kubeconfig or in-cluster)")
	}
	kubeClient, err := kubernetes.NewForConfig(c.clientConfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	ksClient, err := versioned.NewForConfig(c.clientConfig)
	if err != nil {
		return nil, fmt.Errorf("kubestash client: %w", err)
	}
	kubeInformers := c.kubeInformers
	ksInformers := externalversions.NewSharedInformerFactory(ksClient, 0)
	nsInformer := kubeInformers.Core().V1().Namespaces()
	bcInformer := ksInformers.Core().V1alpha1().BackupConfigurations()
	// Informers are made on first use, and only those made before Start run.
	bcSynced := bcInformer.Informer().HasSynced
	bcLister := bcInformer.Lister()

	manager, err := storagetracker.New(storagetracker.Options{
		Client:         kubeClient,
		BackupStorages: ksInformers.Storage().V1alpha1().BackupStorages(),
		Namespaces:     nsInformer,
		Logger:         logger,
		Build:          storagebackend.Builder{LocalDirs: c.ExtraConfig.LocalBackendDirs}.Build,
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			manager.Stop()
		}
	}()

	// Informers run as long as the server; the generic server starts the
	// rest of kubeInformers (admission) again later, which is harmless.
	kubeInformers.Start(ctx.Done())
	ksInformers.Start(ctx.Done())
	syncCtx := ctx
	if t := c.ExtraConfig.InformerSyncTimeout; t > 0 {
		var cancel context.CancelFunc
		syncCtx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	logger.V(1).Info("Reading BackupStorages, Namespaces and BackupConfigurations")
	if !cache.WaitForCacheSync(syncCtx.Done(), bcSynced) {
		return nil, fmt.Errorf("BackupConfigurations could not be listed (is the CRD installed and readable?): %w", syncCtx.Err())
	}
	if err := manager.Sync(syncCtx); err != nil {
		return nil, fmt.Errorf("BackupStorages could not be listed (is the CRD installed and readable?): %w", err)
	}

	tmpl := store.DefaultConfig()
	tmpl.PollInterval = c.ExtraConfig.PollInterval
	tmpl.MaxObjectSize = c.ExtraConfig.MaxObjectSize
	tmpl.EventLogBytes = c.ExtraConfig.EventLogBytes
	tmpl.Logger = logger.WithName("store")
	cat := &registry.Catalog{
		Codec:    layout.NewFileCodec(Scheme),
		Backends: manager,
		Allowed:  manager.Allowed,
		// The four stores poll on their own; one discovery per storage
		// serves the scans of a round.
		Discovery: layout.NewDiscovery(c.ExtraConfig.PollInterval / 2),
		Template:  tmpl,
		Version:   ComponentName,
	}
	cat.OnStore(func(s *store.Store) { manager.AddTarget(s) })

	genericServer, err := c.GenericConfig.New(ComponentName, genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, err
	}
	namespaces := &registry.NamespaceLister{Lister: nsInformer.Lister(), Client: kubeClient.CoreV1().Namespaces()}
	sessions := registry.BackupConfigurationSessions{Lister: bcLister}
	resources := map[string]rest.Storage{}
	for _, r := range []struct {
		plural string
		build  func() (*registry.REST, *registry.StatusREST, error)
	}{
		{catalogv1alpha1.ResourcePluralRepository, func() (*registry.REST, *registry.StatusREST, error) {
			return repositoryrest.NewREST(Scheme, cat, namespaces)
		}},
		{catalogv1alpha1.ResourcePluralSnapshot, func() (*registry.REST, *registry.StatusREST, error) {
			return snapshotrest.NewREST(Scheme, cat, namespaces)
		}},
		{catalogv1alpha1.ResourcePluralBackupSession, func() (*registry.REST, *registry.StatusREST, error) {
			return backupsessionrest.NewREST(Scheme, cat, namespaces, sessions)
		}},
		{catalogv1alpha1.ResourcePluralRestoreSession, func() (*registry.REST, *registry.StatusREST, error) {
			return restoresessionrest.NewREST(Scheme, cat, namespaces)
		}},
	} {
		storage, status, err := r.build()
		if err != nil {
			return nil, err
		}
		resources[r.plural] = storage
		resources[r.plural+"/status"] = status
	}

	browser, err := c.newBrowser(logger, resources, ksInformers, kubeClient)
	if err != nil {
		return nil, err
	}
	resources[catalogv1alpha1.ResourcePluralSnapshot+"/"+catalogv1alpha1.SubresourceFiles] = &snapshotrest.FilesREST{Browser: browser}
	resources[catalogv1alpha1.ResourcePluralSnapshot+"/"+catalogv1alpha1.SubresourceDownload] = &snapshotrest.DownloadREST{Browser: browser}

	// The parameter codec of the catalog's own scheme: it knows the
	// query parameters of snapshots/files and snapshots/download besides
	// the meta options.
	apiGroupInfo := genericapiserver.NewDefaultAPIGroupInfo(catalog.GroupName, Scheme, runtime.NewParameterCodec(Scheme), Codecs)
	apiGroupInfo.NegotiatedSerializer = NegotiatedSerializer
	apiGroupInfo.VersionedResourcesStorageMap[catalogv1alpha1.SchemeGroupVersion.Version] = resources
	if err := genericServer.InstallAPIGroup(&apiGroupInfo); err != nil {
		return nil, err
	}

	h := health{catalog: cat, storages: manager}
	if err := genericServer.AddReadyzChecks(h.indexCheck(), h.storagesCheck()); err != nil {
		return nil, err
	}
	genericServer.AddPostStartHookOrDie("kubestash-catalog-storages", func(hc genericapiserver.PostStartHookContext) error {
		go manager.Run(hc, c.ExtraConfig.Workers)
		return nil
	})
	return &Server{GenericAPIServer: genericServer, Catalog: cat, Storages: manager}, nil
}

// newBrowser builds what serves snapshots/files and snapshots/download over
// the snapshots and repositories storages (so that a Snapshot is found as
// the API finds it, tenancy rules included). A missing restic only makes
// those subresources fail, not the server.
func (c completedConfig) newBrowser(logger klog.Logger, resources map[string]rest.Storage, ksInformers externalversions.SharedInformerFactory, kubeClient kubernetes.Interface) (*browse.Browser, error) {
	bin := c.ExtraConfig.Browse.ResticBinary
	if bin == "" {
		var err error
		if bin, err = restic.DefaultBinary(); err != nil {
			logger.Info("No restic found: snapshots/files and snapshots/download will fail until --restic-binary names one", "err", err)
		}
	}
	snapshots, ok1 := resources[catalogv1alpha1.ResourcePluralSnapshot].(rest.Getter)
	repositories, ok2 := resources[catalogv1alpha1.ResourcePluralRepository].(rest.Getter)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("snapshots and repositories storages must be getters")
	}
	return browse.New(browse.Options{
		Snapshots:      snapshots,
		Repositories:   repositories,
		BackupStorages: ksInformers.Storage().V1alpha1().BackupStorages().Lister(),
		// A GET each time, as pkg/storagetracker reads storage Secrets: the
		// controller grants get on exactly the Secrets the catalog needs.
		Secret: func(ctx context.Context, ns, name string) (*corev1.Secret, error) {
			return kubeClient.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		},
		LocalDirs:     c.ExtraConfig.LocalBackendDirs,
		Restic:        restic.Options{Binary: bin},
		ScratchDir:    c.ExtraConfig.Browse.ScratchDir,
		MaxConcurrent: c.ExtraConfig.Browse.MaxConcurrent,
	})
}
