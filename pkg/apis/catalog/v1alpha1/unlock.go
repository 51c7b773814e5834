package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
)

// Removing stale restic locks on request (`kubectl kubestash unlock`): the
// request is an annotation on the Repository, a token of the requester's
// choice (the plugin writes the time); the controller runs a Job for it
// and, when the Job ended, sets AnnotationUnlocked to the same token and
// the condition TypeStaleLocksRemoved. A token already answered is not
// run again, in this cluster or in another one over the same bucket.
const (
	AnnotationUnlockRequest = "kubestash.com/unlock"
	AnnotationUnlocked      = "kubestash.com/unlocked"
	TypeStaleLocksRemoved   = "StaleLocksRemoved"
	ReasonUnlockSucceeded   = "UnlockJobSucceeded"
	ReasonUnlockFailed      = "UnlockJobFailed"
)

// UnlockJobName is the name of the Job that answers unlock request token
// of Repository repo.
func UnlockJobName(repo, token string) string {
	sum := sha256.Sum256([]byte(token))
	return ValidNameWithPrefixNSuffix("unlock", repo, hex.EncodeToString(sum[:])[:10])
}
