package localnode

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// bind does the kube-scheduler's part for one selected, unscheduled pod:
// there is one node, so the only decision is whether the pod may go there.
func (n *Node) bind(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := n.unscheduled.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	// The informer's label selector says the same, except for
	// labels.Nothing(), whose string form selects everything.
	if pod.Spec.NodeName != "" || pod.DeletionTimestamp != nil || !n.o.Selector.Matches(labels.Set(pod.Labels)) || !n.schedulable(pod) {
		return nil
	}
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: n.o.NodeName},
	}
	err = n.client.CoreV1().Pods(ns).Bind(ctx, binding, metav1.CreateOptions{})
	switch {
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		// Deleted meanwhile, or bound by someone else: nothing to do.
		return nil
	case err != nil:
		return fmt.Errorf("bind pod %s to %s: %w", key, n.o.NodeName, err)
	}
	klog.FromContext(ctx).V(2).Info("Bound pod", "pod", klog.KObj(pod))
	n.recorder.Eventf(pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, n.o.NodeName)
	return nil
}

// schedulable honours the parts of scheduling a test can mean on one node:
// another scheduler's pods and a nodeSelector that does not match are left
// alone. Affinity, taints and resources are not considered.
func (n *Node) schedulable(pod *corev1.Pod) bool {
	if s := pod.Spec.SchedulerName; s != "" && s != corev1.DefaultSchedulerName {
		return false
	}
	if len(pod.Spec.NodeSelector) > 0 {
		if !labels.SelectorFromSet(pod.Spec.NodeSelector).Matches(labels.Set(n.nodeLabels())) {
			return false
		}
	}
	return true
}
