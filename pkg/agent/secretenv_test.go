package agent

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/secretenv"
)

// TestSecretsFromEnvironment: with the encryption Secret passed by
// secretKeyRef (pkg/secretenv), the agent backs up without reading any
// Secret through the API; a wrong value there wins over the API's.
func TestSecretsFromEnvironment(t *testing.T) {
	skipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := newFixture(t)
	require.NoError(t, writeFile(filepath.Join(f.data, "file"), "content"))
	a := f.agent(f.data)
	env := map[string]string{secretenv.Name(secretenv.KeyResticPassword, repoName): password}
	a.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	require.NoError(t, f.kube.CoreV1().Secrets(ns).Delete(ctx, "encrypt-secret", metav1.DeleteOptions{}))
	f.kube.ClearActions()

	bs, snap := f.newSession(1704281100, 0)
	require.NoError(t, a.Backup(ctx, f.backupOpts(bs)))
	assert.Equal(t, catalogv1alpha1.ComponentPhaseSucceeded, f.snapshot(snap).Status.Components[ComponentDump].Phase)
	for _, act := range f.kube.Actions() {
		assert.NotEqual(t, "secrets", act.GetResource().Resource, "no Secret read through the API: %v", act)
	}

	// The environment is what counts: a wrong password there fails.
	env[secretenv.Name(secretenv.KeyResticPassword, repoName)] = "not-the-password"
	bs2, snap2 := f.newSession(1704281400, 0)
	require.Error(t, a.Backup(ctx, f.backupOpts(bs2)))
	assert.Contains(t, f.snapshot(snap2).Status.Components[ComponentDump].Error, "wrong password")
}
