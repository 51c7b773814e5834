package apiserver

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"k8s.io/apiserver/pkg/server/healthz"

	"kubestash.dev/kubestash/pkg/registry"
	"kubestash.dev/kubestash/pkg/storagetracker"
)

// Names of the readiness checks, for /readyz/<name> and ?exclude=<name>.
const (
	// IndexCheck passes once every store has built its index of every
	// storage known at start.
	IndexCheck = "catalog-index"
	// StoragesCheck fails while a BackupStorage can't be served (its
	// backend can't be built or read); its detail, at
	// /readyz/catalog-storages, names them. The other storages are served
	// meanwhile, so a Deployment's readiness probe should exclude it:
	// /readyz?exclude=catalog-storages.
	StoragesCheck = "catalog-storages"
)

type health struct {
	catalog  *registry.Catalog
	storages *storagetracker.Manager
}

func (h health) indexCheck() healthz.HealthChecker {
	return healthz.NamedCheck(IndexCheck, func(*http.Request) error {
		if !h.storages.HasSynced() {
			return fmt.Errorf("BackupStorages not read yet")
		}
		var building []string
		for resource, s := range h.catalog.Stores() {
			if !s.Ready() {
				building = append(building, resource)
			}
		}
		if len(building) > 0 {
			sort.Strings(building)
			return fmt.Errorf("index still being built for %s", strings.Join(building, ", "))
		}
		return nil
	})
}

func (h health) storagesCheck() healthz.HealthChecker {
	return healthz.NamedCheck(StoragesCheck, func(*http.Request) error {
		problems := map[string]string{}
		for id, err := range h.storages.Failures() {
			problems[id] = "backend cannot be built: " + err.Error()
		}
		for resource, s := range h.catalog.Stores() {
			for id, st := range s.Status() {
				if st.LastError != nil && problems[id] == "" {
					problems[id] = fmt.Sprintf("%s not readable: %v", resource, st.LastError)
				}
			}
		}
		if len(problems) == 0 {
			return nil
		}
		ids := make([]string, 0, len(problems))
		for id := range problems {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		lines := make([]string, len(ids))
		for i, id := range ids {
			lines[i] = fmt.Sprintf("BackupStorage %s: %s", id, problems[id])
		}
		return fmt.Errorf("%d BackupStorage(s) not served:\n%s", len(ids), strings.Join(lines, "\n"))
	})
}
