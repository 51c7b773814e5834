package loop

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

// calls records each reconcile of a key, answering from a script.
type calls struct {
	mu      sync.Mutex
	at      []time.Time
	answers []error
}

func (c *calls) reconcile(_ context.Context, ns, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = append(c.at, time.Now())
	if len(c.answers) == 0 {
		return nil
	}
	err := c.answers[0]
	c.answers = c.answers[1:]
	return err
}

func (c *calls) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.at)
}

func TestLoop(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answers []error
		// want is how many reconciles the key gets in all.
		want int
		// gap is the least time between the first two.
		gap time.Duration
	}{
		{name: "done at once", answers: nil, want: 1},
		{name: "a failure is retried", answers: []error{errors.New("boom")}, want: 2},
		{name: "ErrRequeue looks again", answers: []error{ErrRequeue, ErrRequeue}, want: 3},
		{name: "RequeueAfter waits as told", answers: []error{RequeueAfter(300 * time.Millisecond)}, want: 2, gap: 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			c := &calls{answers: tc.answers}
			l := New("test", c.reconcile)
			done := make(chan struct{})
			go func() { l.Run(ctx, 1); close(done) }()
			l.Add("ns/name")
			require.Eventually(t, func() bool { return c.count() >= tc.want }, 30*time.Second, 10*time.Millisecond)
			assert.Never(t, func() bool { return c.count() > tc.want }, 300*time.Millisecond, 10*time.Millisecond, "nothing more once the answer is nil")
			cancel()
			<-done
			assert.Equal(t, tc.want, c.count())
			if tc.gap > 0 {
				assert.GreaterOrEqual(t, c.at[1].Sub(c.at[0]), tc.gap)
			}
		})
	}
}

func TestMalformedKeyIsDropped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &calls{}
	l := New("test", c.reconcile)
	done := make(chan struct{})
	go func() { l.Run(ctx, 1); close(done) }()
	l.Add("a/b/c")
	l.Add("ns/ok")
	require.Eventually(t, func() bool { return c.count() == 1 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	<-done
	assert.Equal(t, 1, c.count(), "only the well-formed key is reconciled")
}

// TestOnChange: adds, real updates and deletes reach fn (a deletion's last
// known state too); an informer's resync does not.
func TestOnChange(t *testing.T) {
	var got []string
	h := OnChange(func(obj any) { got = append(got, obj.(*corev1.ConfigMap).ResourceVersion) })
	cm := func(rv string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", ResourceVersion: rv}}
	}
	h.OnAdd(cm("1"), false)
	h.OnUpdate(cm("1"), cm("1")) // a resync
	h.OnUpdate(cm("1"), cm("2"))
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "c", Obj: cm("3")})
	assert.Equal(t, []string{"1", "2", "3"}, got)
}

func TestNamespaceTerminating(t *testing.T) {
	terminating := apierrors.NewForbidden(schema.GroupResource{Resource: "cronjobs"}, "c", errors.New("unable to create new content in namespace ns because it is being terminated"))
	terminating.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause}}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "the admission's error", err: fmt.Errorf("create CronJob: %w", terminating), want: true},
		{name: "joined into one message", err: fmt.Errorf("schedulers: %s; other", terminating.Error()), want: true},
		{name: "an RBAC refusal", err: apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "s", errors.New(`User "x" cannot get resource "secrets"`))},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, namespaceTerminating(tt.err), tt.name)
	}
}
