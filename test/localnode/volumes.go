package localnode

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"kubestash.dev/kubestash/pkg/pathmap"
)

// errNotBound is a PVC the PV binder has not bound yet: wait, as a kubelet
// waits for an attachable volume.
var errNotBound = errors.New("not bound yet")

// prepareVolumes gives every volume of the pod a host path: existing paths
// for PVCs and hostPath, folders under the pod's folder for the rest, with
// their files written. The result is volume name -> host path.
func (w *podWorker) prepareVolumes(ctx context.Context, pod *corev1.Pod) (map[string]string, error) {
	out := map[string]string{}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		p, err := w.prepareVolume(ctx, pod, v)
		if err != nil {
			return nil, fmt.Errorf("volume %q: %w", v.Name, err)
		}
		out[v.Name] = p
	}
	return out, nil
}

func (w *podWorker) prepareVolume(ctx context.Context, pod *corev1.Pod, v *corev1.Volume) (string, error) {
	own := filepath.Join(w.dir, "volumes", v.Name)
	switch {
	case v.PersistentVolumeClaim != nil:
		return w.claimPath(ctx, pod.Namespace, v.PersistentVolumeClaim.ClaimName)
	case v.HostPath != nil:
		return v.HostPath.Path, hostPathType(v.HostPath.Path, v.HostPath.Type)
	case v.EmptyDir != nil:
		return own, os.MkdirAll(own, 0o777)
	case v.Secret != nil:
		files, err := w.secretFiles(ctx, pod.Namespace, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional)
		if err != nil {
			return "", err
		}
		return own, writeFiles(own, files, v.Secret.DefaultMode)
	case v.ConfigMap != nil:
		files, err := w.configMapFiles(ctx, pod.Namespace, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional)
		if err != nil {
			return "", err
		}
		return own, writeFiles(own, files, v.ConfigMap.DefaultMode)
	case v.DownwardAPI != nil:
		files, err := downwardFiles(pod, v.DownwardAPI.Items)
		if err != nil {
			return "", err
		}
		return own, writeFiles(own, files, v.DownwardAPI.DefaultMode)
	case v.Projected != nil:
		files := map[string]file{}
		for _, src := range v.Projected.Sources {
			var part map[string]file
			var err error
			switch {
			case src.ServiceAccountToken != nil:
				part, err = w.tokenFile(ctx, pod, src.ServiceAccountToken)
			case src.ConfigMap != nil:
				part, err = w.configMapFiles(ctx, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional)
			case src.Secret != nil:
				part, err = w.secretFiles(ctx, pod.Namespace, src.Secret.Name, src.Secret.Items, src.Secret.Optional)
			case src.DownwardAPI != nil:
				part, err = downwardFiles(pod, src.DownwardAPI.Items)
			default:
				err = errors.New("projected source not supported by the local node")
			}
			if err != nil {
				return "", err
			}
			for k, f := range part {
				files[k] = f
			}
		}
		return own, writeFiles(own, files, v.Projected.DefaultMode)
	}
	return "", errors.New("volume type not supported by the local node")
}

// claimPath is the host folder of the PV bound to a claim.
func (w *podWorker) claimPath(ctx context.Context, namespace, claim string) (string, error) {
	pvc, err := w.n.client.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, claim, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("get persistentvolumeclaim %s: %w", claim, err)
	}
	if pvc.DeletionTimestamp != nil {
		// As the kubelet: no new Pod starts with a claim being deleted.
		return "", fmt.Errorf("persistentvolumeclaim %s is being deleted", claim)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return "", fmt.Errorf("persistentvolumeclaim %s: %w", claim, errNotBound)
	}
	pv, err := w.n.client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("get persistentvolume %s of claim %s: %w", pvc.Spec.VolumeName, claim, err)
	}
	switch {
	case pv.Spec.HostPath != nil:
		// A container runtime creates a missing bind-mount source; so
		// does this node, unless the PV asks for a check.
		t := pv.Spec.HostPath.Type
		if t == nil || *t == corev1.HostPathUnset {
			t = ptr.To(corev1.HostPathDirectoryOrCreate)
		}
		return pv.Spec.HostPath.Path, hostPathType(pv.Spec.HostPath.Path, t)
	case pv.Spec.Local != nil:
		if _, err := os.Stat(pv.Spec.Local.Path); err != nil {
			return "", fmt.Errorf("local persistentvolume %s: %w", pv.Name, err)
		}
		return pv.Spec.Local.Path, nil
	}
	return "", fmt.Errorf("persistentvolume %s is neither hostPath nor local: the local node cannot mount it", pv.Name)
}

// hostPathType applies the checks and creations of a hostPath type.
func hostPathType(p string, t *corev1.HostPathType) error {
	if t == nil {
		return nil
	}
	fi, err := os.Stat(p)
	switch *t {
	case corev1.HostPathUnset:
		return nil
	case corev1.HostPathDirectoryOrCreate:
		if errors.Is(err, fs.ErrNotExist) {
			return os.MkdirAll(p, 0o755)
		}
	case corev1.HostPathFileOrCreate:
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
	case corev1.HostPathDirectory:
		if err == nil && !fi.IsDir() {
			return fmt.Errorf("hostPath %s is not a directory", p)
		}
	case corev1.HostPathFile:
		if err == nil && !fi.Mode().IsRegular() {
			return fmt.Errorf("hostPath %s is not a file", p)
		}
	}
	return err
}

// file is the content and mode (nil: the volume's default) of one file.
type file struct {
	data []byte
	mode *int32
}

func (w *podWorker) secretFiles(ctx context.Context, namespace, name string, items []corev1.KeyToPath, optional *bool) (map[string]file, error) {
	s, err := w.n.client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if isOptional(optional) && isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get secret %s: %w", name, err)
	}
	return keyFiles("secret "+name, s.Data, items, optional)
}

func (w *podWorker) configMapFiles(ctx context.Context, namespace, name string, items []corev1.KeyToPath, optional *bool) (map[string]file, error) {
	cm, err := w.n.client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if isOptional(optional) && isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get configmap %s: %w", name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyFiles("configmap "+name, data, items, optional)
}

// keyFiles projects keys to files: every key, or the listed items.
func keyFiles(what string, data map[string][]byte, items []corev1.KeyToPath, optional *bool) (map[string]file, error) {
	out := map[string]file{}
	if len(items) == 0 {
		for k, v := range data {
			out[k] = file{data: v}
		}
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if isOptional(optional) {
				continue
			}
			return nil, fmt.Errorf("%s has no key %q", what, it.Key)
		}
		out[it.Path] = file{data: v, mode: it.Mode}
	}
	return out, nil
}

func downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile) (map[string]file, error) {
	out := map[string]file{}
	for _, it := range items {
		if it.FieldRef == nil {
			return nil, fmt.Errorf("downwardAPI %s: only fieldRef is supported by the local node", it.Path)
		}
		v, err := podField(pod, it.FieldRef.FieldPath)
		if err != nil {
			return nil, err
		}
		out[it.Path] = file{data: []byte(v), mode: it.Mode}
	}
	return out, nil
}

// tokenFile asks the TokenRequest API for a token of the pod's
// ServiceAccount bound to the pod, as a kubelet does for projected tokens:
// it stops working once the pod is deleted. An empty audience is the API
// server's default. Tokens are not refreshed: the API server extends the
// default 3607 s projected token to a year, and pods here are short.
func (w *podWorker) tokenFile(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) (map[string]file, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	var audiences []string
	if src.Audience != "" {
		audiences = []string{src.Audience}
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         audiences,
		ExpirationSeconds: src.ExpirationSeconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	tok, err := w.n.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, tr, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token of serviceaccount %s: %w", sa, err)
	}
	return map[string]file{src.Path: {data: []byte(tok.Status.Token), mode: ptr.To[int32](0o600)}}, nil
}

// writeFiles writes a volume's files below dir. Paths come from the API
// server's validation (relative, no ".."), checked again here because they
// become host paths.
func writeFiles(dir string, files map[string]file, defaultMode *int32) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if defaultMode != nil {
		mode = os.FileMode(*defaultMode) & os.ModePerm
	}
	for rel, f := range files {
		if !filepath.IsLocal(rel) {
			return fmt.Errorf("file path %q escapes the volume", rel)
		}
		m := mode
		if f.mode != nil {
			m = os.FileMode(*f.mode) & os.ModePerm
		}
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		// The owner (this node) must keep write access to rewrite it.
		if err := os.WriteFile(p, f.data, m|0o200); err != nil {
			return err
		}
		if err := os.Chmod(p, m|0o200); err != nil {
			return err
		}
	}
	return nil
}

// containerMounts builds the path map of one container: its volume mounts
// (with subPath) and its termination message file.
func (w *podWorker) containerMounts(c *corev1.Container, vols map[string]string, env []string, termFile string) (pathmap.Map, error) {
	lookup := envLookup(env)
	var m pathmap.Map
	for _, vm := range c.VolumeMounts {
		host, ok := vols[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volume mount %q: no such volume", vm.Name)
		}
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			sub = expand(vm.SubPathExpr, lookup)
		}
		if sub != "" {
			if !filepath.IsLocal(sub) {
				return nil, fmt.Errorf("volume mount %q: subPath %q escapes the volume", vm.Name, sub)
			}
			host = filepath.Join(host, sub)
			if _, err := os.Stat(host); errors.Is(err, fs.ErrNotExist) {
				if err := os.MkdirAll(host, 0o755); err != nil {
					return nil, fmt.Errorf("volume mount %q: %w", vm.Name, err)
				}
			}
		}
		m = append(m, pathmap.Mount{MountPath: filepath.Clean(vm.MountPath), HostPath: host})
	}
	tp := c.TerminationMessagePath
	if tp == "" {
		tp = corev1.TerminationMessagePathDefault
	}
	m = append(m, pathmap.Mount{MountPath: filepath.Clean(tp), HostPath: termFile})
	return m, nil
}

// linkRoot makes root a folder in which each mount path is a symbolic link
// to its host path (KUBESTASH_ROOT). A mount nested in another is reached
// through its parent's link only, since that link leads to a host folder
// this node must not write into.
func linkRoot(root string, m pathmap.Map) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	sorted := append(pathmap.Map(nil), m...)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i].MountPath) < len(sorted[j].MountPath) })
	var linked []string
	for _, mt := range sorted {
		if mt.MountPath == "/" {
			continue
		}
		nested := false
		for _, l := range linked {
			if strings.HasPrefix(mt.MountPath, l+"/") {
				nested = true
			}
		}
		if nested {
			continue
		}
		link := filepath.Join(root, mt.MountPath)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return err
		}
		_ = os.Remove(link) // a restarted container links again
		if err := os.Symlink(mt.HostPath, link); err != nil {
			return err
		}
		linked = append(linked, mt.MountPath)
	}
	return nil
}

func envLookup(env []string) func(string) (string, bool) {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}
