package localnode

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

const leaseNamespace = corev1.NamespaceNodeLease

// register creates the Node, or takes over an existing one of the same name
// (a restarted local node), and publishes a Ready status.
func (n *Node) register(ctx context.Context) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:   n.o.NodeName,
			Labels: n.nodeLabels(),
		},
	}
	_, err := n.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	switch {
	case err == nil:
		klog.FromContext(ctx).V(1).Info("Registered the node")
	case apierrors.IsAlreadyExists(err):
		klog.FromContext(ctx).V(1).Info("Node exists: taking it over")
	default:
		return fmt.Errorf("register node %s: %w", n.o.NodeName, err)
	}
	if err := n.updateNodeStatus(ctx, true); err != nil {
		return err
	}
	return n.renewLease(ctx)
}

func (n *Node) nodeLabels() map[string]string {
	return map[string]string{
		corev1.LabelHostname:   n.o.NodeName,
		corev1.LabelOSStable:   runtime.GOOS,
		corev1.LabelArchStable: runtime.GOARCH,
	}
}

func (n *Node) capacity() corev1.ResourceList {
	if n.o.Capacity != nil {
		return n.o.Capacity
	}
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
}

// updateNodeStatus writes the whole status with a fresh heartbeat.
func (n *Node) updateNodeStatus(ctx context.Context, ready bool) error {
	now := metav1.Now()
	readyCond := corev1.NodeCondition{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		Message: "local node is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now,
	}
	if !ready {
		readyCond.Status, readyCond.Reason, readyCond.Message = corev1.ConditionFalse, "LocalNodeStopped", "the local node process stopped"
	}
	conds := []corev1.NodeCondition{readyCond}
	for _, c := range []struct {
		t      corev1.NodeConditionType
		reason string
	}{
		{corev1.NodeMemoryPressure, "KubeletHasSufficientMemory"},
		{corev1.NodeDiskPressure, "KubeletHasNoDiskPressure"},
		{corev1.NodePIDPressure, "KubeletHasSufficientPID"},
	} {
		conds = append(conds, corev1.NodeCondition{
			Type: c.t, Status: corev1.ConditionFalse, Reason: c.reason,
			LastHeartbeatTime: now, LastTransitionTime: now,
		})
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := n.client.CoreV1().Nodes().Get(ctx, n.o.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		// Keep transition times of conditions that did not change.
		for i := range conds {
			for _, old := range node.Status.Conditions {
				if old.Type == conds[i].Type && old.Status == conds[i].Status {
					conds[i].LastTransitionTime = old.LastTransitionTime
				}
			}
		}
		node.Status.Conditions = conds
		node.Status.Capacity = n.capacity()
		node.Status.Allocatable = n.capacity()
		node.Status.Addresses = []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: podIP},
			{Type: corev1.NodeHostName, Address: n.o.NodeName},
		}
		node.Status.NodeInfo = corev1.NodeSystemInfo{
			OperatingSystem: runtime.GOOS, Architecture: runtime.GOARCH,
			KubeletVersion: "v0.0.0-localnode", ContainerRuntimeVersion: "localnode://0",
			OSImage: "local processes", KernelVersion: kernelVersion(),
		}
		_, err = n.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("update status of node %s: %w", n.o.NodeName, err)
	}
	return nil
}

func kernelVersion() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// renewLease creates or renews the node Lease in kube-node-lease, owned by
// the Node like a kubelet's, so that it goes with the Node.
func (n *Node) renewLease(ctx context.Context) error {
	leases := n.client.CoordinationV1().Leases(leaseNamespace)
	now := metav1.NewMicroTime(time.Now())
	spec := coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(n.o.NodeName),
		LeaseDurationSeconds: ptr.To(int32(n.o.LeaseDuration / time.Second)),
		RenewTime:            &now,
	}
	lease, err := leases.Get(ctx, n.o.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, err := n.client.CoreV1().Nodes().Get(ctx, n.o.NodeName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("node lease: %w", err)
		}
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Name: n.o.NodeName, Namespace: leaseNamespace,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}},
			},
			Spec: spec,
		}
		if _, err := leases.Create(ctx, lease, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node lease: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get node lease: %w", err)
	}
	lease.Spec.HolderIdentity, lease.Spec.LeaseDurationSeconds, lease.Spec.RenewTime = spec.HolderIdentity, spec.LeaseDurationSeconds, spec.RenewTime
	if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("renew node lease: %w", err)
	}
	return nil
}

// heartbeat renews the Lease every interval and the Ready condition every
// fourth, until ctx ends. A Node deleted meanwhile is registered again.
func (n *Node) heartbeat(ctx context.Context) {
	logger := klog.FromContext(ctx)
	beat := 0
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		beat++
		if err := n.renewLease(ctx); err != nil && ctx.Err() == nil {
			logger.Error(err, "Node heartbeat failed")
		}
		if beat%4 != 0 {
			return
		}
		err := n.updateNodeStatus(ctx, true)
		if apierrors.IsNotFound(err) {
			err = n.register(ctx)
		}
		if err != nil && ctx.Err() == nil {
			logger.Error(err, "Node status heartbeat failed")
		}
	}, n.o.HeartbeatInterval)
}

// markNotReady tells the cluster this node is gone: nothing runs its pods
// any more. The Node itself stays, as a stopped kubelet's does.
func (n *Node) markNotReady(logger klog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.updateNodeStatus(ctx, false); err != nil {
		logger.Error(err, "Could not mark the node NotReady")
	}
}
