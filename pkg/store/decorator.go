package store

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/storage/storagebackend/factory"
	"k8s.io/client-go/tools/cache"
)

// NewStorageDecorator returns a generic.StorageDecorator, for the
// RESTOptions of one resource, that builds a Store in place of etcd3's.
//
// template holds the resource's Backends, Locator, Scanner and Admitter and
// the tuning (start from DefaultConfig); NewFunc, NewListFunc and
// ResourcePrefix come from the registry, and the codec from the
// ConfigForResource unless template.Codec is set (it must write YAML). The
// store is started at once with its own context and stopped by the
// returned DestroyFunc. started, if not nil, gets the store, so that the
// caller can add and remove storages and read their status.
func NewStorageDecorator(template Config, started func(*Store)) generic.StorageDecorator {
	return func(
		config *storagebackend.ConfigForResource,
		resourcePrefix string,
		keyFunc func(obj runtime.Object) (string, error),
		newFunc func() runtime.Object,
		newListFunc func() runtime.Object,
		getAttrsFunc storage.AttrFunc,
		trigger storage.IndexerFuncs,
		indexers *cache.Indexers,
	) (storage.Interface, factory.DestroyFunc, error) {
		cfg := template
		if cfg.Codec == nil && config != nil {
			cfg.Codec = config.Codec
		}
		cfg.NewFunc, cfg.NewListFunc, cfg.ResourcePrefix = newFunc, newListFunc, resourcePrefix
		s, err := New(cfg)
		if err != nil {
			return nil, nil, err
		}
		s.Start(context.Background())
		if started != nil {
			started(s)
		}
		var once sync.Once
		// The registry calls destroy funcs more than once (subresources
		// share the store).
		return s, func() { once.Do(s.Stop) }, nil
	}
}
