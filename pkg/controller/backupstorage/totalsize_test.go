package backupstorage

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/controller/lookup/lookuptest"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned/fake"
)

// TestTotalSize: blank until some repository's size is known, as upstream
// shows it; the sum once known.
func TestTotalSize(t *testing.T) {
	repo := func(name, size string) *catalogv1alpha1.Repository {
		return &catalogv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: name},
			Spec:   catalogv1alpha1.RepositorySpec{StorageRef: kmapi.ObjectReference{Name: "s"}},
			Status: catalogv1alpha1.RepositoryStatus{Size: size}}
	}
	cases := []struct {
		name  string
		repos []*catalogv1alpha1.Repository
		want  string
	}{
		{name: "no repository", want: ""},
		{name: "repositories without a size yet", repos: []*catalogv1alpha1.Repository{repo("a", ""), repo("b", "")}, want: ""},
		{name: "one size known", repos: []*catalogv1alpha1.Repository{repo("a", "1.500 KiB"), repo("b", "")}, want: "1.500 KiB"},
		{name: "sizes add up", repos: []*catalogv1alpha1.Repository{repo("a", "1 KiB"), repo("b", "1 KiB")}, want: "2.000 KiB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var objs []any
			ks := fake.NewSimpleClientset()
			informed := lookuptest.NewInformed(t, nil, ks)
			for _, r := range c.repos {
				objs = append(objs, r)
				_, err := ks.CatalogV1alpha1().Repositories("demo").Create(context.Background(), r, metav1.CreateOptions{})
				require.NoError(t, err)
			}
			bs := &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "s"}}
			st := &storagev1alpha1.BackupStorageStatus{TotalSize: "stale"}
			// The repositories are listed from the cache alone: it must
			// have them.
			informed.Settle(t)
			require.NoError(t, (&Reconciler{Client: ks, Reads: informed.Reads}).repositories(context.Background(), bs, st))
			assert.Equal(t, c.want, st.TotalSize)
			assert.Len(t, st.Repositories, len(objs))
		})
	}
}
