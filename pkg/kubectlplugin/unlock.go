package kubectlplugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/conditions"
)

func newUnlockCommand(o *Options) *cobra.Command {
	var (
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "unlock REPOSITORY [--wait=false]",
		Short: "Remove the stale restic locks of a Repository (never a live one)",
		Long: `Remove the restic locks that no running restic holds from every restic
repository of a Repository: those of Job pods of its namespace that no
longer run, and those restic itself calls stale (not refreshed for 30
minutes). A lock of a restic that may still run is kept.

The plugin asks the controller, through the annotation
kubestash.com/unlock on the Repository, to run a Job (unlock-<repository>-
<hash>) as the namespace's backup ServiceAccount; it never reads a Secret.
With --wait (the default) it prints what the Job did, from the
Repository's condition StaleLocksRemoved. Needs update on repositories.`,
		Example: `  kubectl kubestash unlock s3-repo -n demo
  kubectl kubestash unlock s3-repo -n demo --wait=false`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.clients()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			repos := c.Client.CatalogV1alpha1().Repositories(c.Namespace)
			token := o.Now().UTC().Format(time.RFC3339Nano)
			patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, catalogv1alpha1.AnnotationUnlockRequest, token)
			repo, err := repos.Patch(ctx, args[0], types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: fieldManager})
			if err != nil {
				return err
			}
			fmt.Fprintf(o.Out, "repository.catalog.kubestash.com/%s: unlock requested (Job %s)\n", repo.Name, catalogv1alpha1.UnlockJobName(repo.Name, token))
			if !wait {
				return nil
			}
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			return waitUnlock(ctx, o, c, repo.Name, token)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&wait, "wait", true, "wait for the unlock Job to end and print what it did")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "with --wait, give up waiting after this long (0: no limit)")
	return cmd
}

// waitUnlock polls the Repository until the controller answered request
// token, and prints the outcome; a failed unlock is an error.
func waitUnlock(ctx context.Context, o *Options, c *Clients, name, token string) error {
	for {
		repo, err := c.Client.CatalogV1alpha1().Repositories(c.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		switch {
		case repo.Annotations[catalogv1alpha1.AnnotationUnlockRequest] != token:
			return fmt.Errorf("another unlock of Repository %s was requested meanwhile (%s); see its condition %s",
				name, repo.Annotations[catalogv1alpha1.AnnotationUnlockRequest], catalogv1alpha1.TypeStaleLocksRemoved)
		case repo.Annotations[catalogv1alpha1.AnnotationUnlocked] == token:
			cond := conditions.Get(repo.Status.Conditions, catalogv1alpha1.TypeStaleLocksRemoved)
			if cond == nil {
				return fmt.Errorf("Repository %s has no condition %s", name, catalogv1alpha1.TypeStaleLocksRemoved)
			}
			msg := cond.Message
			// "Job X completed: a; b" reads better one line each.
			if job, lines, ok := strings.Cut(msg, ": "); ok {
				msg = job + ":\n  " + strings.ReplaceAll(lines, "; ", "\n  ")
			}
			if cond.Status != metav1.ConditionTrue {
				return errors.New(msg)
			}
			fmt.Fprintln(o.Out, msg)
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("timed out waiting for the unlock of Repository %s (is the controller running?)", name)
			}
			return ctx.Err()
		case <-time.After(o.PollInterval):
		}
	}
}
