package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/controller/access"
	"kubestash.dev/kubestash/pkg/controller/backupstorage"
	"kubestash.dev/kubestash/pkg/controller/lookup"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/test/framework"
)

// TestTenantDryRunAndForeignReferences: a namespace user with edit rights
// in their own namespace only gets, from a server-side dry run, the
// refusal a create gets; and a reference to another namespace's storage,
// repository or snapshot answers the same whether it exists or not. A
// name the backends cannot store is a 422 naming the limit.
func TestTenantDryRunAndForeignReferences(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const (
		storageNS = "tenancy-api-storage"
		tenant    = "tenancy-api-tenant"
		user      = "tenancy-api-alice"
	)
	prefix := fmt.Sprintf("tenancy-api-%d", time.Now().UnixNano())
	createNamespaces(ctx, t, storageNS, tenant)
	mc, err := env.MinIO.Client()
	require.NoError(t, err)
	vault := bucketRepo{Name: "vault", Namespace: storageNS, Path: "/vault", StorageRef: kmapi.ObjectReference{Name: "s3", Namespace: storageNS}, Snapshots: seq("vault", 1)}
	putFiles(ctx, t, mc, env.MinIO.Bucket, catalogFiles(t, prefix, vault))
	applyBackupStorage(ctx, t, env, storageNS, "s3", prefix, "Same")
	// The user edits the catalog of their namespace, nothing else.
	grantCatalogRole(ctx, t, tenant, user, "catalog-editor", []string{"repositories", "snapshots", "backupsessions", "restoresessions"},
		"get", "list", "watch", "create", "update", "patch", "delete")
	startCatalogServer(t, catalogServerOptions{})
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.ElementsMatch(c, vault.Snapshots, kubectlNames(ctx, c, env, "snapshots", "-n", storageNS))
	}, 30*time.Second, time.Second, "the other namespace's snapshot is served")

	cfg, err := env.UserConfig(user)
	require.NoError(t, err)
	cs, err := versioned.NewForConfig(cfg)
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, err := cs.CatalogV1alpha1().Repositories(tenant).List(ctx, metav1.ListOptions{})
		assert.NoError(c, err)
	}, 30*time.Second, 500*time.Millisecond, "the user's rights are in place")
	_, err = cs.CatalogV1alpha1().Snapshots(storageNS).Get(ctx, vault.Snapshots[0], metav1.GetOptions{})
	require.True(t, apierrors.IsForbidden(err), "the user may not read %s: %v", storageNS, err)

	repository := func(storage string) func(metav1.CreateOptions) error {
		return func(o metav1.CreateOptions) error {
			_, err := cs.CatalogV1alpha1().Repositories(tenant).Create(ctx, &catalogv1alpha1.Repository{
				ObjectMeta: metav1.ObjectMeta{Name: "intruder", Namespace: tenant},
				Spec:       catalogv1alpha1.RepositorySpec{StorageRef: kmapi.ObjectReference{Name: storage, Namespace: storageNS}, Path: "/intruder"},
			}, o)
			return err
		}
	}
	restore := func(ds catalogv1alpha1.RestoreDataSource) func(metav1.CreateOptions) error {
		return func(o metav1.CreateOptions) error {
			_, err := cs.CatalogV1alpha1().RestoreSessions(tenant).Create(ctx, &catalogv1alpha1.RestoreSession{
				ObjectMeta: metav1.ObjectMeta{Name: "steal", Namespace: tenant},
				Spec:       catalogv1alpha1.RestoreSessionSpec{DataSource: ds},
			}, o)
			return err
		}
	}
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	for _, c := range []struct {
		name             string
		existing, absent func(metav1.CreateOptions) error
		// same makes the two answers comparable: it replaces the absent
		// object's name with the existing one's.
		same func(string) string
		want string
		code int32
	}{
		{"a storage of another namespace", repository("s3"), repository("ghost"),
			strings.NewReplacer(storageNS+"/ghost", storageNS+"/s3").Replace, "no BackupStorage " + storageNS + "/s3 that namespace " + tenant + " may use", 400},
		{"a repository of another namespace",
			restore(catalogv1alpha1.RestoreDataSource{Namespace: storageNS, Repository: "vault", Snapshot: "latest"}),
			restore(catalogv1alpha1.RestoreDataSource{Namespace: storageNS, Repository: "nope", Snapshot: "latest"}),
			strings.NewReplacer(storageNS+"/nope", storageNS+"/vault").Replace, "no Repository " + storageNS + "/vault", 400},
		{"a snapshot of another namespace",
			restore(catalogv1alpha1.RestoreDataSource{Namespace: storageNS, Snapshot: vault.Snapshots[0]}),
			restore(catalogv1alpha1.RestoreDataSource{Namespace: storageNS, Snapshot: "vault-999"}),
			strings.NewReplacer("vault-999", vault.Snapshots[0]).Replace, "was not found", 422},
	} {
		t.Run(c.name, func(t *testing.T) {
			var answers []string
			for _, create := range []func(metav1.CreateOptions) error{c.existing, c.absent} {
				for _, o := range []metav1.CreateOptions{dryRun, {}} {
					err := create(o)
					require.Error(t, err, "dry run %v", o.DryRun)
					status, ok := err.(apierrors.APIStatus)
					require.True(t, ok, "%T: %v", err, err)
					assert.Equal(t, c.code, status.Status().Code, "%v", err)
					answers = append(answers, c.same(err.Error()))
				}
			}
			t.Logf("answer: %s", answers[0])
			assert.Contains(t, answers[0], c.want)
			for _, a := range answers[1:] {
				assert.Equal(t, answers[0], a, "dry run or not, existing or not: one answer")
			}
		})
	}
	_, err = cs.CatalogV1alpha1().Repositories(tenant).Get(ctx, "intruder", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "nothing was created: %v", err)

	t.Run("a name the backends cannot store", func(t *testing.T) {
		for _, o := range []metav1.CreateOptions{dryRun, {}} {
			_, err := cs.CatalogV1alpha1().Snapshots(tenant).Create(ctx, &catalogv1alpha1.Snapshot{
				ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("n", 251), Namespace: tenant},
				Spec:       catalogv1alpha1.SnapshotSpec{Repository: "any"},
			}, o)
			require.Error(t, err)
			assert.True(t, apierrors.IsInvalid(err), "422, got %v", err)
			assert.Contains(t, err.Error(), "metadata.name")
			assert.Contains(t, err.Error(), "no more than 250 characters")
			assert.NotContains(t, err.Error(), env.Dir)
		}
	})
}

// catalogServerUser is the catalog server's ServiceAccount as a user.
var catalogServerUser = authorizationv1.SubjectAccessReviewSpec{
	User:   "system:serviceaccount:kubestash:catalog-apiserver",
	Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kubestash", "system:authenticated"},
}

// allowed asks kube-apiserver whether the catalog server's account may do
// verb on secrets (in ns, named name; empty: all).
func allowed(ctx context.Context, t *testing.T, verb, ns, name string) bool {
	t.Helper()
	spec := catalogServerUser
	spec.ResourceAttributes = &authorizationv1.ResourceAttributes{Verb: verb, Resource: "secrets", Namespace: ns, Name: name}
	r, err := env.KubeClient.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
	require.NoError(t, err)
	return r.Status.Allowed
}

// TestCatalogServerReadsOnlyGrantedSecrets: with the RBAC we ship, the
// catalog server's ServiceAccount may not read Secrets, cluster-wide or
// in a namespace, until the controller (as its own ServiceAccount, whose
// rights must allow the grant) reconciles a BackupStorage: then it may get
// that storage's Secret, and only it. A catalog server running as that
// account serves the storage's catalog.
func TestCatalogServerReadsOnlyGrantedSecrets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ns = "tenancy-api-grant"
	root, err := framework.RepoRoot()
	require.NoError(t, err)
	for _, f := range []string{"apiserver/00-namespace.yaml", "apiserver/01-serviceaccount.yaml", "apiserver/02-rbac.yaml", "controller/01-controller-rbac.yaml"} {
		_, stderr, err := env.Kubectl(ctx, "", "apply", "-f", filepath.Join(root, "artifacts", f))
		require.NoError(t, err, stderr)
	}
	prefix := fmt.Sprintf("tenancy-grant-%d", time.Now().UnixNano())
	createNamespaces(ctx, t, ns)
	mc, err := env.MinIO.Client()
	require.NoError(t, err)
	repo := bucketRepo{Name: "granted", Namespace: ns, Path: "/granted", StorageRef: kmapi.ObjectReference{Name: "s3", Namespace: ns}, Snapshots: seq("granted", 2)}
	putFiles(ctx, t, mc, env.MinIO.Bucket, catalogFiles(t, prefix, repo))
	applyBackupStorage(ctx, t, env, ns, "s3", prefix, "Same")
	_, _, err = env.Kubectl(ctx, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: unrelated\n  namespace: "+ns+"\nstringData:\n  k: v\n", "apply", "-f", "-")
	require.NoError(t, err)

	assert.False(t, allowed(ctx, t, "list", "", ""), "no list of Secrets cluster-wide")
	assert.False(t, allowed(ctx, t, "watch", "", ""), "no watch of Secrets cluster-wide")
	assert.False(t, allowed(ctx, t, "get", ns, "s3-secret"), "nothing before the controller grants it")

	// The BackupStorage reconciler, as the controller's ServiceAccount.
	ctrlCfg, err := env.UserConfig("system:serviceaccount:kubestash:kubestash-controller", "system:serviceaccounts", "system:serviceaccounts:kubestash", "system:authenticated")
	require.NoError(t, err)
	kube, err := kubernetes.NewForConfig(ctrlCfg)
	require.NoError(t, err)
	client, err := versioned.NewForConfig(ctrlCfg)
	require.NoError(t, err)
	r := &backupstorage.Reconciler{Kube: kube, Client: client, CatalogServerAccount: access.DefaultCatalogServerAccount, Reads: lookup.LiveReads(kube, client)}
	require.NoError(t, r.Reconcile(ctx, ns, "s3"), "the controller's rights allow the grant")

	require.Eventually(t, func() bool { return allowed(ctx, t, "get", ns, "s3-secret") }, 30*time.Second, 500*time.Millisecond,
		"the storage's Secret may be read")
	assert.False(t, allowed(ctx, t, "get", ns, "unrelated"), "another Secret of the namespace may not")
	assert.False(t, allowed(ctx, t, "list", ns, ""), "nor may the namespace's Secrets be listed")
	assert.False(t, allowed(ctx, t, "list", "", ""), "nor all Secrets")

	// A catalog server as that account (its kubeconfig for everything it
	// reads, delegated authentication and authorization too).
	kc, err := env.UserKubeconfig("catalog-apiserver", catalogServerUser.User, catalogServerUser.Groups...)
	require.NoError(t, err)
	startCatalogServer(t, catalogServerOptions{ExtraArgs: []string{"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc}})
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.ElementsMatch(c, repo.Snapshots, kubectlNames(ctx, c, env, "snapshots", "-n", ns))
	}, 60*time.Second, time.Second, "the catalog is served by the server running as its ServiceAccount")
}
