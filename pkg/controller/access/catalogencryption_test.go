package access

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
)

func TestGrantCatalogEncryptionSecrets(t *testing.T) {
	repo := func(name, secret, ns string) corev1alpha1.RepositoryInfo {
		return corev1alpha1.RepositoryInfo{Name: name, EncryptionSecret: &kmapi.ObjectReference{Name: secret, Namespace: ns}}
	}
	for _, tc := range []struct {
		name    string
		repos   []corev1alpha1.RepositoryInfo
		account string
		// want are the Secrets granted; nil: no Role.
		want []string
	}{
		{name: "one secret", repos: []corev1alpha1.RepositoryInfo{repo("r", "enc", "")}, account: DefaultCatalogServerAccount, want: []string{"enc"}},
		{name: "sorted and distinct", repos: []corev1alpha1.RepositoryInfo{repo("a", "z", "demo"), repo("b", "a", ""), repo("c", "z", "")}, account: DefaultCatalogServerAccount, want: []string{"a", "z"}},
		{name: "other namespaces are never granted", repos: []corev1alpha1.RepositoryInfo{repo("r", "enc", "other")}, account: DefaultCatalogServerAccount},
		{name: "no account", repos: []corev1alpha1.RepositoryInfo{repo("r", "enc", "")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kube := fake.NewClientset()
			bc := &corev1alpha1.BackupConfiguration{
				ObjectMeta: metav1.ObjectMeta{Name: "bc", Namespace: "demo", UID: "u1"},
				Spec:       corev1alpha1.BackupConfigurationSpec{Sessions: []corev1alpha1.Session{{Repositories: tc.repos}}},
			}
			ctx := context.Background()
			require.NoError(t, GrantCatalogEncryptionSecrets(ctx, kube, bc, tc.account))
			role, err := kube.RbacV1().Roles("demo").Get(ctx, "kubestash-catalog-encryption-bc", metav1.GetOptions{})
			if tc.want == nil {
				assert.True(t, apierrors.IsNotFound(err), "%v", err)
				return
			}
			require.NoError(t, err)
			require.Len(t, role.Rules, 1)
			assert.Equal(t, []string{"get"}, role.Rules[0].Verbs)
			assert.Equal(t, tc.want, role.Rules[0].ResourceNames)
			assert.Equal(t, "bc", role.OwnerReferences[0].Name)
			rb, err := kube.RbacV1().RoleBindings("demo").Get(ctx, "kubestash-catalog-encryption-bc", metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, "catalog-apiserver", rb.Subjects[0].Name)
			assert.Equal(t, "kubestash", rb.Subjects[0].Namespace)

			// Repositories without a Secret: the grant goes.
			bc.Spec.Sessions[0].Repositories = nil
			require.NoError(t, GrantCatalogEncryptionSecrets(ctx, kube, bc, tc.account))
			_, err = kube.RbacV1().Roles("demo").Get(ctx, "kubestash-catalog-encryption-bc", metav1.GetOptions{})
			assert.True(t, apierrors.IsNotFound(err), "%v", err)
		})
	}
}
