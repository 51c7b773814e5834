package kubectlplugin

import (
	"fmt"

	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
)

const fieldManager = "kubectl-kubestash"

func newTriggerCommand(o *Options) *cobra.Command {
	var session string
	cmd := &cobra.Command{
		Use:   "trigger BACKUPCONFIGURATION [--session NAME]",
		Short: "Start a backup now",
		Long: `Start a backup session of a BackupConfiguration now: create the
BackupSession <config>-<session>-<unix seconds> that its CronJob would
create, and print its name. --session is needed when the configuration has
more than one session.`,
		Example: `  kubectl kubestash trigger pvc-backup -n demo
  kubectl get backupsession -n demo -w`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.clients()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			bc, err := c.Client.CoreV1alpha1().BackupConfigurations(c.Namespace).Get(ctx, args[0], metav1.GetOptions{})
			if err != nil {
				return err
			}
			bs, err := NewBackupSession(bc, session, o.Now().Unix())
			if err != nil {
				return err
			}
			out, err := c.Client.CatalogV1alpha1().BackupSessions(bc.Namespace).Create(ctx, bs, metav1.CreateOptions{FieldManager: fieldManager})
			if err != nil {
				return err
			}
			fmt.Fprintf(o.Out, "backupsession.catalog.kubestash.com/%s created\n", out.Name)
			if bc.Spec.Paused {
				fmt.Fprintf(o.ErrOut, "warning: BackupConfiguration %s is paused\n", bc.Name)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&session, "session", "", "the session of the BackupConfiguration (default: its only session)")
	return cmd
}

// NewBackupSession is the BackupSession the CronJob of a session creates
// (agent trigger, pkg/agent/trigger.go): named <bc>-<session>-<unix>,
// labelled with its invoker, with the session's timeout and retries.
func NewBackupSession(bc *corev1alpha1.BackupConfiguration, sessionName string, unix int64) (*catalogv1alpha1.BackupSession, error) {
	var session *corev1alpha1.Session
	var names []string
	for i := range bc.Spec.Sessions {
		names = append(names, bc.Spec.Sessions[i].Name)
		if bc.Spec.Sessions[i].Name == sessionName {
			session = &bc.Spec.Sessions[i]
		}
	}
	switch {
	case sessionName == "" && len(bc.Spec.Sessions) == 1:
		session = &bc.Spec.Sessions[0]
	case sessionName == "":
		return nil, fmt.Errorf("BackupConfiguration %s has sessions %s: choose one with --session", bc.Name, strings.Join(names, ", "))
	case session == nil:
		return nil, fmt.Errorf("BackupConfiguration %s has no session %q (it has %s)", bc.Name, sessionName, strings.Join(names, ", "))
	}
	return catalogv1alpha1.NewBackupSession(bc, session, time.Unix(unix, 0)), nil
}

func newPauseCommand(o *Options, pause bool) *cobra.Command {
	verb, short := "resume", "Resume the backups of a BackupConfiguration (spec.paused: false)"
	if pause {
		verb, short = "pause", "Pause the backups of a BackupConfiguration (spec.paused: true)"
	}
	return &cobra.Command{
		Use:   verb + " BACKUPCONFIGURATION",
		Short: short,
		Long: short + `.
A paused configuration's CronJobs are suspended and it starts no session;
the change is printed as "spec.paused: OLD -> NEW".`,
		Example: fmt.Sprintf("  kubectl kubestash %s pvc-backup -n demo", verb),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.clients()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			bcs := c.Client.CoreV1alpha1().BackupConfigurations(c.Namespace)
			var bc, out *corev1alpha1.BackupConfiguration
			// The resourceVersion makes the patch fail on a concurrent
			// change (the controller writes the status often), so that
			// what is printed is what changed: read again and retry.
			err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				var err error
				if bc, err = bcs.Get(ctx, args[0], metav1.GetOptions{}); err != nil {
					return err
				}
				if bc.Spec.Paused == pause {
					out = nil
					return nil
				}
				patch := fmt.Sprintf(`{"metadata":{"resourceVersion":%q},"spec":{"paused":%t}}`, bc.ResourceVersion, pause)
				out, err = bcs.Patch(ctx, bc.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: fieldManager})
				return err
			})
			if err != nil {
				return err
			}
			ref := "backupconfiguration.core.kubestash.com/" + bc.Name
			if out == nil {
				fmt.Fprintf(o.Out, "%s unchanged (spec.paused: %t)\n", ref, pause)
				return nil
			}
			fmt.Fprintf(o.Out, "%s %sd (spec.paused: %t -> %t)\n", ref, verb, bc.Spec.Paused, out.Spec.Paused)
			return nil
		},
	}
}
