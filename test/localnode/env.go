package localnode

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// podIP is the address of every pod and of the node: all run on loopback.
const podIP = "127.0.0.1"

// envResolver looks Secrets and ConfigMaps up once per container start.
type envResolver struct {
	client      kubernetes.Interface
	pod         *corev1.Pod
	allocatable corev1.ResourceList
	secrets     map[string]*corev1.Secret
	configMaps  map[string]*corev1.ConfigMap
}

func newEnvResolver(client kubernetes.Interface, pod *corev1.Pod, allocatable corev1.ResourceList) *envResolver {
	return &envResolver{client: client, pod: pod, allocatable: allocatable, secrets: map[string]*corev1.Secret{}, configMaps: map[string]*corev1.ConfigMap{}}
}

// secret returns nil, nil when the Secret does not exist.
func (r *envResolver) secret(ctx context.Context, name string) (*corev1.Secret, error) {
	if s, ok := r.secrets[name]; ok {
		return s, nil
	}
	s, err := r.client.CoreV1().Secrets(r.pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		s, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get secret %s/%s: %w", r.pod.Namespace, name, err)
	}
	r.secrets[name] = s
	return s, nil
}

// configMap returns nil, nil when the ConfigMap does not exist.
func (r *envResolver) configMap(ctx context.Context, name string) (*corev1.ConfigMap, error) {
	if c, ok := r.configMaps[name]; ok {
		return c, nil
	}
	c, err := r.client.CoreV1().ConfigMaps(r.pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		c, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get configmap %s/%s: %w", r.pod.Namespace, name, err)
	}
	r.configMaps[name] = c
	return c, nil
}

// containerEnv resolves a container's envFrom and env as a kubelet does:
// envFrom first, then env, each value expanded with the variables defined
// before it. base comes first and may be overridden.
func (r *envResolver) containerEnv(ctx context.Context, c *corev1.Container, base []string) ([]string, error) {
	var order []string
	vals := map[string]string{}
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	for _, kv := range base {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := r.configMap(ctx, from.ConfigMapRef.Name)
			if err != nil {
				return nil, err
			}
			if cm == nil {
				if isOptional(from.ConfigMapRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("configmap %q not found", from.ConfigMapRef.Name)
			}
			data = cm.Data
		case from.SecretRef != nil:
			s, err := r.secret(ctx, from.SecretRef.Name)
			if err != nil {
				return nil, err
			}
			if s == nil {
				if isOptional(from.SecretRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("secret %q not found", from.SecretRef.Name)
			}
			data = map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		for k, v := range data {
			set(from.Prefix+k, v)
		}
	}
	lookup := func(k string) (string, bool) { v, ok := vals[k]; return v, ok }
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, lookup))
			continue
		}
		v, ok, err := r.valueFrom(ctx, c, e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if ok {
			set(e.Name, v)
		}
	}
	env := make([]string, 0, len(order))
	for _, k := range order {
		env = append(env, k+"="+vals[k])
	}
	return env, nil
}

// valueFrom resolves one env source; ok is false for a missing optional key.
func (r *envResolver) valueFrom(ctx context.Context, c *corev1.Container, src *corev1.EnvVarSource) (string, bool, error) {
	switch {
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		s, err := r.secret(ctx, ref.Name)
		if err != nil {
			return "", false, err
		}
		if s != nil {
			if v, ok := s.Data[ref.Key]; ok {
				return string(v), true, nil
			}
		}
		if isOptional(ref.Optional) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("key %q of secret %q not found", ref.Key, ref.Name)
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		cm, err := r.configMap(ctx, ref.Name)
		if err != nil {
			return "", false, err
		}
		if cm != nil {
			if v, ok := cm.Data[ref.Key]; ok {
				return v, true, nil
			}
			if v, ok := cm.BinaryData[ref.Key]; ok {
				return string(v), true, nil
			}
		}
		if isOptional(ref.Optional) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("key %q of configmap %q not found", ref.Key, ref.Name)
	case src.FieldRef != nil:
		v, err := podField(r.pod, src.FieldRef.FieldPath)
		return v, err == nil, err
	case src.ResourceFieldRef != nil:
		v, err := r.resourceField(c, src.ResourceFieldRef)
		return v, err == nil, err
	}
	return "", false, fmt.Errorf("unsupported env source")
}

// podField is the downward API: the fields a kubelet resolves.
func podField(pod *corev1.Pod, fieldPath string) (string, error) {
	if k, ok := strings.CutPrefix(fieldPath, "metadata.labels['"); ok {
		return pod.Labels[strings.TrimSuffix(k, "']")], nil
	}
	if k, ok := strings.CutPrefix(fieldPath, "metadata.annotations['"); ok {
		return pod.Annotations[strings.TrimSuffix(k, "']")], nil
	}
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs", "status.hostIP", "status.hostIPs":
		return podIP, nil
	}
	return "", fmt.Errorf("field %q is not supported by the local node", fieldPath)
}

func formatMap(m map[string]string) string {
	lines := make([]string, 0, len(m))
	for k, v := range m {
		lines = append(lines, fmt.Sprintf("%s=%q", k, v))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// resourceField is resourceFieldRef: the container's limit or request, the
// node's allocatable when no limit is set, divided by the divisor and
// rounded up.
func (r *envResolver) resourceField(c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	target := c
	if ref.ContainerName != "" {
		target = nil
		for i := range r.pod.Spec.Containers {
			if r.pod.Spec.Containers[i].Name == ref.ContainerName {
				target = &r.pod.Spec.Containers[i]
			}
		}
		if target == nil {
			return "", fmt.Errorf("resourceFieldRef: no container %q", ref.ContainerName)
		}
	}
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok {
		return "", fmt.Errorf("resourceFieldRef: resource %q", ref.Resource)
	}
	res := corev1.ResourceName(name)
	var q resource.Quantity
	var found bool
	switch kind {
	case "limits":
		q, found = target.Resources.Limits[res]
	case "requests":
		q, found = target.Resources.Requests[res]
	}
	if !found {
		q = r.allocatable[res]
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if res == corev1.ResourceCPU {
		return fmt.Sprint(int64(math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue())))), nil
	}
	return fmt.Sprint(int64(math.Ceil(float64(q.Value()) / float64(divisor.Value())))), nil
}

func isOptional(b *bool) bool { return b != nil && *b }

// expand replaces $(VAR) with the value of VAR when it is defined, as the
// kubelet does for env values, command and args: "$$" is a literal "$"
// and an undefined or unterminated reference stays as written.
func expand(s string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString("$(")
				i++
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// inheritedEnv picks the variables of this process named in names.
func inheritedEnv(names []string) []string {
	var env []string
	for _, k := range names {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
