// Package conditions reads and sets kmapi.Conditions, the way meta.SetStatusCondition
// does for metav1.Condition: a transition time changes only with the status.
package conditions

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kubestash.dev/kubestash/pkg/apis/kmapi"
)

// Set adds c to conds or replaces the condition of the same type. The
// transition time is kept when the status did not change, and set to now
// (or c's own, if given) when it did. It reports whether anything changed.
func Set(conds *[]kmapi.Condition, c kmapi.Condition) bool {
	if c.LastTransitionTime.IsZero() {
		c.LastTransitionTime = metav1.Now()
	}
	for i := range *conds {
		cur := &(*conds)[i]
		if cur.Type != c.Type {
			continue
		}
		if cur.Status == c.Status {
			c.LastTransitionTime = cur.LastTransitionTime
		}
		if *cur == c {
			return false
		}
		*cur = c
		return true
	}
	*conds = append(*conds, c)
	return true
}

// Get returns the condition of type t, or nil.
func Get(conds []kmapi.Condition, t string) *kmapi.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// IsTrue reports whether the condition of type t is True.
func IsTrue(conds []kmapi.Condition, t string) bool {
	c := Get(conds, t)
	return c != nil && c.Status == metav1.ConditionTrue
}

// IsFalse reports whether the condition of type t exists and is False.
func IsFalse(conds []kmapi.Condition, t string) bool {
	c := Get(conds, t)
	return c != nil && c.Status == metav1.ConditionFalse
}

// True and False build conditions.
func True(t, reason, message string) kmapi.Condition {
	return kmapi.Condition{Type: t, Status: metav1.ConditionTrue, Reason: reason, Message: message}
}

// False builds a False condition with severity Error.
func False(t, reason, message string) kmapi.Condition {
	return kmapi.Condition{Type: t, Status: metav1.ConditionFalse, Reason: reason, Message: message, Severity: kmapi.ConditionSeverityError}
}
