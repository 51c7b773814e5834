package kubectlplugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
)

// RestoreOptions are the flags of restore.
type RestoreOptions struct {
	Snapshot string
	// ToPVC is the PersistentVolumeClaim restored into, in the namespace.
	ToPVC string
	// Include and Exclude are paths of the snapshot (the restore task's
	// include and exclude params).
	Include, Exclude []string
	// EncryptionSecret is [NAMESPACE/]NAME; empty: the Repository's.
	EncryptionSecret string
	Name             string
	Addon, Task      string
	Wait             bool
	Timeout          time.Duration
}

func newRestoreCommand(o *Options) *cobra.Command {
	r := RestoreOptions{}
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT --to-pvc NAME [--include PATH ...] [--wait]",
		Short: "Restore a Snapshot, or some of its paths, into a PVC",
		Long: `Restore a Snapshot into a PersistentVolumeClaim of the namespace by
creating a RestoreSession, and print its name. --include (and --exclude)
restore only those paths of the snapshot (relative to the backed-up volume's
root); the rest of the target is left as it is.

The restic password comes from the encryption Secret of the Snapshot's
Repository (spec.encryptionSecret), or from --encryption-secret; the
plugin never reads it. With --wait the command follows the restore,
printing its phase and progress, and fails if the restore fails.`,
		Example: `  kubectl kubestash restore s3-repo-pvc-backup-daily-1733580000 --to-pvc restored -n demo --wait
  kubectl kubestash restore s3-repo-pvc-backup-daily-1733580000 --to-pvc restored --include /data/reports --wait`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if r.ToPVC == "" {
				return usageError(cmd, "--to-pvc is required")
			}
			r.Snapshot = args[0]
			c, err := o.clients()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			rs, err := NewRestoreSession(ctx, c, r, o.Now().Unix())
			if err != nil {
				return err
			}
			out, err := c.Client.CatalogV1alpha1().RestoreSessions(c.Namespace).Create(ctx, rs, metav1.CreateOptions{FieldManager: fieldManager})
			if err != nil {
				return err
			}
			fmt.Fprintf(o.Out, "restoresession.catalog.kubestash.com/%s created\n", out.Name)
			if !r.Wait {
				return nil
			}
			if r.Timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, r.Timeout)
				defer cancel()
			}
			return waitRestore(ctx, o, c, out.Name)
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.ToPVC, "to-pvc", "", "the PersistentVolumeClaim to restore into (required)")
	f.StringArrayVar(&r.Include, "include", nil, "restore only this path of the snapshot (repeatable)")
	f.StringArrayVar(&r.Exclude, "exclude", nil, "do not restore this path of the snapshot (repeatable)")
	f.StringVar(&r.EncryptionSecret, "encryption-secret", "", "[NAMESPACE/]NAME of the Secret with RESTIC_PASSWORD (default: the Repository's spec.encryptionSecret)")
	f.StringVar(&r.Name, "name", "", "name of the RestoreSession (default: <pvc>-restore-<unix seconds>)")
	f.StringVar(&r.Addon, "addon", "pvc-addon", "the Addon restoring")
	f.StringVar(&r.Task, "task", "logical-backup-restore", "the Addon's restore task")
	f.BoolVar(&r.Wait, "wait", false, "wait for the restore to end, printing its progress")
	f.DurationVar(&r.Timeout, "timeout", 0, "with --wait, give up waiting after this long (0: no limit)")
	return cmd
}

// NewRestoreSession builds the RestoreSession of r: the Snapshot's
// Repository and encryption Secret, the PVC as target, include and
// exclude as the restore task's params.
func NewRestoreSession(ctx context.Context, c *Clients, r RestoreOptions, unix int64) (*catalogv1alpha1.RestoreSession, error) {
	snap, err := c.Client.CatalogV1alpha1().Snapshots(c.Namespace).Get(ctx, r.Snapshot, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if snap.Spec.Repository == "" {
		return nil, fmt.Errorf("Snapshot %s names no Repository", snap.Name)
	}
	if snap.Status.Phase != "" && snap.Status.Phase != catalogv1alpha1.SnapshotSucceeded {
		return nil, fmt.Errorf("Snapshot %s is %s; only a Succeeded Snapshot can be restored", snap.Name, snap.Status.Phase)
	}
	secret, err := encryptionSecret(ctx, c, snap.Spec.Repository, r.EncryptionSecret)
	if err != nil {
		return nil, err
	}
	task := corev1alpha1.TaskReference{Name: r.Task}
	params := map[string][]string{}
	for k, paths := range map[string][]string{"include": r.Include, "exclude": r.Exclude} {
		for _, p := range paths {
			params[k] = append(params[k], cleanPath(p))
		}
	}
	if len(params) > 0 {
		raw, err := json.Marshal(params)
		if err != nil {
			return nil, err
		}
		task.Params = &runtime.RawExtension{Raw: raw}
	}
	name := r.Name
	if name == "" {
		name = catalogv1alpha1.ValidNameWithPrefixNSuffix(r.ToPVC, "restore", strconv.FormatInt(unix, 10))
	}
	return &catalogv1alpha1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.Namespace},
		Spec: catalogv1alpha1.RestoreSessionSpec{
			Target: &kmapi.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: r.ToPVC, Namespace: c.Namespace},
			DataSource: catalogv1alpha1.RestoreDataSource{
				Repository:       snap.Spec.Repository,
				Snapshot:         snap.Name,
				EncryptionSecret: secret,
			},
			Addon: &corev1alpha1.AddonInfo{Name: r.Addon, Tasks: []corev1alpha1.TaskReference{task}},
		},
	}, nil
}

// encryptionSecret is flag ([NAMESPACE/]NAME) or, when empty, the
// Repository's spec.encryptionSecret.
func encryptionSecret(ctx context.Context, c *Clients, repo, flag string) (*kmapi.ObjectReference, error) {
	if flag != "" {
		ns, name, ok := strings.Cut(flag, "/")
		if !ok {
			ns, name = c.Namespace, flag
		}
		if ns == "" || name == "" {
			return nil, fmt.Errorf("--encryption-secret %q: want NAME or NAMESPACE/NAME", flag)
		}
		return &kmapi.ObjectReference{Namespace: ns, Name: name}, nil
	}
	rp, err := c.Client.CatalogV1alpha1().Repositories(c.Namespace).Get(ctx, repo, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if rp.Spec.EncryptionSecret == nil || rp.Spec.EncryptionSecret.Name == "" {
		return nil, fmt.Errorf("Repository %s names no encryption Secret: give --encryption-secret", repo)
	}
	s := rp.Spec.EncryptionSecret.DeepCopy()
	if s.Namespace == "" {
		s.Namespace = c.Namespace
	}
	return s, nil
}

// waitRestore polls a RestoreSession until it ends, printing each change
// of its phase or progress; a restore that does not succeed is an error.
func waitRestore(ctx context.Context, o *Options, c *Clients, name string) error {
	last := ""
	for {
		rs, err := c.Client.CatalogV1alpha1().RestoreSessions(c.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if line := ProgressLine(rs); line != last {
			fmt.Fprintln(o.Out, line)
			last = line
		}
		if rs.Status.Phase.IsTerminal() {
			if rs.Status.Phase == catalogv1alpha1.RestoreSucceeded {
				return nil
			}
			return fmt.Errorf("RestoreSession %s %s: %s", name, rs.Status.Phase, failureReason(rs))
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("timed out waiting for RestoreSession %s (phase %s)", name, rs.Status.Phase)
			}
			return ctx.Err()
		case <-time.After(o.PollInterval):
		}
	}
}

// ProgressLine is one line of a RestoreSession's state: its phase, and for
// each component its phase and progress.
func ProgressLine(rs *catalogv1alpha1.RestoreSession) string {
	phase := string(rs.Status.Phase)
	if phase == "" {
		phase = string(catalogv1alpha1.RestorePending)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", rs.Name, phase)
	if rs.Status.Duration != "" && rs.Status.Phase.IsTerminal() {
		fmt.Fprintf(&b, " in %s", rs.Status.Duration)
	}
	names := make([]string, 0, len(rs.Status.Components))
	for n := range rs.Status.Components {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		cp := rs.Status.Components[n]
		fmt.Fprintf(&b, "; %s %s", n, cp.Phase)
		if p := cp.Progress; p != nil && cp.Phase == catalogv1alpha1.RestoreRunning {
			fmt.Fprintf(&b, " %s (%d/%d files", p.PercentDone, p.FilesDone, p.TotalFiles)
			if p.Total != "" {
				fmt.Fprintf(&b, ", %s/%s", p.RestoreDone, p.Total)
			}
			b.WriteString(")")
		}
	}
	return b.String()
}

// failureReason is why a restore failed: the components' errors, else the
// conditions' messages.
func failureReason(rs *catalogv1alpha1.RestoreSession) string {
	var why []string
	for n, cp := range rs.Status.Components {
		if cp.Error != "" {
			why = append(why, n+": "+cp.Error)
		}
	}
	sort.Strings(why)
	if len(why) == 0 {
		for _, c := range rs.Status.Conditions {
			if c.Message != "" && (c.Status == metav1.ConditionFalse || strings.Contains(strings.ToLower(string(c.Type)), "fail")) {
				why = append(why, fmt.Sprintf("%s: %s", c.Type, c.Message))
			}
		}
	}
	if len(why) == 0 {
		return "no reason given (kubectl describe restoresession " + rs.Name + ")"
	}
	return strings.Join(why, "; ")
}
