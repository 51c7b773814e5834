package agent

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var snapshotsGR = schema.GroupResource{Group: "catalog.kubestash.com", Resource: "snapshots"}

// TestFinalWriteWaitsForTheCatalog: while the catalog's backend is down
// (503), the final verdict is written once it is back.
func TestFinalWriteWaitsForTheCatalog(t *testing.T) {
	calls := 0
	a := &Agent{FinalStatusWait: 30 * time.Second}
	err := a.finalWrite(context.Background(), func(ctx context.Context) error {
		calls++
		if calls < 3 {
			return apierrors.NewServiceUnavailable("the backend of storage demo/s3 is unavailable")
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 3, calls)
}

// TestFinalWritePermanentError: an error that waiting does not fix ends
// the write at once.
func TestFinalWritePermanentError(t *testing.T) {
	calls := 0
	a := &Agent{FinalStatusWait: 30 * time.Second}
	err := a.finalWrite(context.Background(), func(ctx context.Context) error {
		calls++
		return apierrors.NewNotFound(snapshotsGR, "gone")
	})
	assert.True(t, apierrors.IsNotFound(err), "%v", err)
	assert.Equal(t, 1, calls)
}

// TestFinalWriteIsBounded: the wait ends after FinalStatusWait with the
// catalog's error, not a context error.
func TestFinalWriteIsBounded(t *testing.T) {
	a := &Agent{FinalStatusWait: 1200 * time.Millisecond}
	start := time.Now()
	err := a.finalWrite(context.Background(), func(ctx context.Context) error {
		return apierrors.NewServiceUnavailable("backend down")
	})
	assert.True(t, apierrors.IsServiceUnavailable(err), "%v", err)
	assert.Less(t, time.Since(start), 5*time.Second)
}

// TestFinalWriteAfterSIGTERM: once the agent's context ended, the write
// still happens, on a context of its own.
func TestFinalWriteAfterSIGTERM(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a := &Agent{}
	var wrote bool
	err := a.finalWrite(ctx, func(wctx context.Context) error {
		if wctx.Err() != nil {
			return wctx.Err()
		}
		wrote = true
		return nil
	})
	require.NoError(t, err)
	assert.True(t, wrote)
}
