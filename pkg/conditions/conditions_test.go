package conditions

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kubestash.dev/kubestash/pkg/apis/kmapi"
)

func TestSet(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var conds []kmapi.Condition
	c := True("Ready", "Ok", "fine")
	c.LastTransitionTime = t0
	assert.True(t, Set(&conds, c))
	assert.False(t, Set(&conds, True("Ready", "Ok", "fine")), "same condition: no change, time kept")
	assert.Equal(t, t0, conds[0].LastTransitionTime)
	assert.True(t, Set(&conds, True("Ready", "Ok", "still fine")), "new message")
	assert.Equal(t, t0, conds[0].LastTransitionTime, "same status keeps its transition time")
	assert.True(t, Set(&conds, False("Ready", "Broken", "no")))
	assert.NotEqual(t, t0, conds[0].LastTransitionTime)
	assert.True(t, IsFalse(conds, "Ready"))
	assert.False(t, IsTrue(conds, "Ready"))
	assert.Nil(t, Get(conds, "Other"))
	assert.False(t, IsFalse(conds, "Other"))
	assert.Len(t, conds, 1)
}
