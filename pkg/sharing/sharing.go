// Package sharing decides whether one namespace may read another's backups.
//
// A RestoreSession restores into its own namespace only; it may take its
// data from another namespace's Repository (to restore a backup of a
// deleted or renamed namespace, say) only when that namespace opted in by
// naming it in the annotation catalog.kubestash.com/share-snapshots-with.
// Namespaces are cluster-scoped, so only who may edit namespaces (an admin)
// can opt one in: a tenant cannot grant itself another tenant's snapshots.
package sharing

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Annotation lists, comma separated, the namespaces whose RestoreSessions
// may restore from the annotated namespace's Repositories.
const Annotation = "catalog.kubestash.com/share-snapshots-with"

// Allows reports whether a namespace annotated with value shares its
// snapshots with namespace from.
func Allows(value, from string) bool {
	for _, ns := range strings.Split(value, ",") {
		if strings.TrimSpace(ns) == from {
			return true
		}
	}
	return false
}

// Check returns nil when namespace from may read the snapshots of namespace
// of, and otherwise an error that reads the same whether of exists or not,
// so that it tells a tenant nothing about other namespaces. A failure to
// look is returned as is: it is a retry, not a refusal.
func Check(ctx context.Context, kube kubernetes.Interface, from, of string) (refused error, err error) {
	if from == of {
		return nil, nil
	}
	ns, err := kube.CoreV1().Namespaces().Get(ctx, of, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get Namespace %s: %w", of, err)
	}
	if err == nil && Allows(ns.Annotations[Annotation], from) {
		return nil, nil
	}
	return fmt.Errorf("namespace %q does not share its snapshots with namespace %q (an administrator lists %q in the annotation %s of namespace %q)", of, from, from, Annotation, of), nil
}
