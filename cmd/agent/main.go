// Command agent runs inside KubeStash's Jobs:
//
//	agent trigger --namespace=demo --invoker-name=<bc> --invoker-kind=BackupConfiguration --session-name=<session>
//	agent backup  --namespace=demo --backupsession=<bs> --enable-cache=true --scratch-dir=/kubestash-tmp --exclude= --paths=/kubestash-data
//	agent forget  --namespace=demo --repository=<repo> --scratch-dir=/kubestash-tmp
//	agent unlock  --namespace=demo --repository=<repo> --scratch-dir=/kubestash-tmp
//	agent restore --namespace=demo --restoresession=<rs> --snapshot=<snapshot> --enable-cache=true --scratch-dir=/kubestash-tmp
//
// The arguments are upstream's (Functions pvc-backup and pvc-restore, the
// trigger CronJob), so the stock Addon and Function objects work. restic is
// looked up next to this binary, then on PATH (--restic-binary overrides).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"kubestash.dev/kubestash/pkg/agent"
	"kubestash.dev/kubestash/pkg/version"
)

func main() {
	os.Exit(run())
}

func run() int {
	defer klog.Flush()
	// SIGTERM (Job deleted, pod evicted, activeDeadlineSeconds) cancels
	// the context: restic gets SIGTERM in turn, removes its lock, and the
	// component is reported Failed before the agent exits.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		klog.ErrorS(err, "Agent failed")
		writeTerminationMessage(err.Error())
		return 1
	}
	return 0
}

// terminationLog is the container's terminationMessagePath (the
// default), from which the kubelet takes the termination message.
const terminationLog = "/dev/termination-log"

// writeTerminationMessage puts the reason of a failure where the kubelet
// takes the container's termination message from, so the Pod's status
// says why the Job failed. The file exists only in a container (the
// kubelet mounts it); elsewhere nothing is written, and nothing is
// created. Messages name objects and restic's redacted output, never a
// secret.
func writeTerminationMessage(msg string) {
	const limit = 4096 // the kubelet keeps at most this much
	if len(msg) > limit {
		msg = msg[:limit]
	}
	f, err := os.OpenFile(terminationLog, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return
	}
	_, _ = f.WriteString(msg)
	_ = f.Close()
}

type globalFlags struct {
	kubeconfig       string
	resticBinary     string
	progressInterval time.Duration
	snapshotWait     time.Duration
	host             string
}

func newRootCommand() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "agent",
		Short:         "Backup, restore and trigger steps of KubeStash Jobs",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.kubeconfig, "kubeconfig", "", "kubeconfig file; empty: in-cluster config, else the default kubeconfig")
	pf.StringVar(&g.resticBinary, "restic-binary", "", "restic executable; empty: restic next to this program, else on PATH")
	pf.DurationVar(&g.progressInterval, "progress-interval", 5*time.Second, "how often progress is written into the status")
	pf.DurationVar(&g.snapshotWait, "snapshot-wait", time.Minute, "how long backup waits for the controller to create a Snapshot")
	pf.StringVar(&g.host, "host", agent.DefaultHost, "restic --host of backups")
	// Of klog's flags only the verbosity ones; the agent logs to stderr,
	// which the Job keeps.
	klogFlags := flag.NewFlagSet("klog", flag.ExitOnError)
	klog.InitFlags(klogFlags)
	for _, name := range []string{"v", "vmodule"} {
		pf.AddGoFlag(klogFlags.Lookup(name))
	}

	root.AddCommand(newBackupCommand(g), newRestoreCommand(g), newTriggerCommand(g), newForgetCommand(g), newUnlockCommand(g))
	return root
}

func (g *globalFlags) agent() (*agent.Agent, error) {
	cfg, err := restConfig(g.kubeconfig)
	if err != nil {
		return nil, err
	}
	a, err := agent.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	// The Pod's own namespace, where the pods named by restic locks are
	// looked up; empty outside a Pod, which turns that off.
	a.PodNamespace = podNamespace()
	a.Restic.Binary = g.resticBinary
	a.ProgressInterval = g.progressInterval
	a.SnapshotWait = g.snapshotWait
	a.Host = g.host
	return a, nil
}

// restConfig: --kubeconfig, else in-cluster (the Job's ServiceAccount),
// else the usual kubeconfig lookup for a developer's shell.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	cfg, err := rest.InClusterConfig()
	if err == nil {
		return cfg, nil
	}
	if !errors.Is(err, rest.ErrNotInCluster) {
		return nil, err
	}
	cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("no in-cluster config and no kubeconfig: %w", err)
	}
	return cfg, nil
}

// serviceAccountNamespace is where the kubelet puts the namespace of the
// Pod's ServiceAccount, which is the Pod's.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// podNamespace is the namespace of the Pod the agent runs in: POD_NAMESPACE
// (the downward API), else the ServiceAccount's; empty outside a Pod. It is
// also the default of --namespace.
func podNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile(serviceAccountNamespace); err == nil {
		return strings.TrimSpace(string(b))
	}
	return ""
}

// list splits a comma-separated flag; the Functions pass "--exclude=" when
// a parameter is unset, which is an empty list.
func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// boolDefault parses --enable-cache, which the Functions pass as
// "--enable-cache=${enableCache:=}": empty means the addon default, true.
func boolDefault(s string, def bool) (bool, error) {
	if strings.TrimSpace(s) == "" {
		return def, nil
	}
	return strconv.ParseBool(s)
}

func newBackupCommand(g *globalFlags) *cobra.Command {
	var o agent.BackupOptions
	var enableCache, excludes, paths string
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Back up the target of a BackupSession into its Snapshots",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.EnableCache, err = boolDefault(enableCache, true); err != nil {
				return fmt.Errorf("--enable-cache: %w", err)
			}
			o.Excludes, o.Paths = list(excludes), list(paths)
			a, err := g.agent()
			if err != nil {
				return err
			}
			return a.Backup(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Namespace, "namespace", podNamespace(), "namespace of the BackupSession")
	f.StringVar(&o.BackupSession, "backupsession", "", "name of the BackupSession")
	f.StringVar(&enableCache, "enable-cache", "true", "keep restic's cache in the scratch folder")
	f.StringVar(&o.ScratchDir, "scratch-dir", agent.DefaultScratchDir, "folder for restic's cache and temporary files")
	f.StringVar(&excludes, "exclude", "", "comma-separated restic exclude patterns")
	f.StringVar(&paths, "paths", agent.DefaultDataDir, "comma-separated folders to back up")
	return cmd
}

func newRestoreCommand(g *globalFlags) *cobra.Command {
	var o agent.RestoreOptions
	var enableCache, includes, excludes string
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Restore the Snapshot of a RestoreSession into the mounted target",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.EnableCache, err = boolDefault(enableCache, true); err != nil {
				return fmt.Errorf("--enable-cache: %w", err)
			}
			o.Includes, o.Excludes = list(includes), list(excludes)
			a, err := g.agent()
			if err != nil {
				return err
			}
			return a.Restore(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Namespace, "namespace", podNamespace(), "namespace of the RestoreSession")
	f.StringVar(&o.RestoreSession, "restoresession", "", "name of the RestoreSession")
	f.StringVar(&o.Snapshot, "snapshot", "", "Snapshot to restore (resolved by the controller); empty: the RestoreSession's")
	f.StringVar(&enableCache, "enable-cache", "true", "keep restic's cache in the scratch folder")
	f.StringVar(&o.ScratchDir, "scratch-dir", agent.DefaultScratchDir, "folder for restic's cache and temporary files")
	f.StringVar(&includes, "include", "", "comma-separated restic include patterns")
	f.StringVar(&excludes, "exclude", "", "comma-separated restic exclude patterns")
	return cmd
}

func newTriggerCommand(g *globalFlags) *cobra.Command {
	var o agent.TriggerOptions
	cmd := &cobra.Command{
		Use: "trigger",
		// Upstream's CronJobs run "trigger-backup".
		Aliases: []string{"trigger-backup"},
		Short:   "Create a BackupSession for a session of a BackupConfiguration",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := g.agent()
			if err != nil {
				return err
			}
			bs, err := a.Trigger(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backupsession/%s created\n", bs.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Namespace, "namespace", podNamespace(), "namespace of the BackupConfiguration")
	f.StringVar(&o.InvokerName, "invoker-name", "", "name of the BackupConfiguration")
	f.StringVar(&o.InvokerKind, "invoker-kind", "BackupConfiguration", "kind of the invoker")
	f.StringVar(&o.SessionName, "session-name", "", "session of the BackupConfiguration")
	return cmd
}

func newUnlockCommand(g *globalFlags) *cobra.Command {
	var o agent.UnlockOptions
	cmd := &cobra.Command{
		Use:   "unlock",
		Short: "Remove the stale restic locks of a Repository, never a live one (kubectl kubestash unlock)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := g.agent()
			if err != nil {
				return err
			}
			summary, err := a.Unlock(cmd.Context(), o)
			if summary != "" {
				// The Job's log, and its pod's termination message: the
				// controller puts it in the Repository's condition.
				fmt.Println(summary)
				if err == nil {
					writeTerminationMessage(summary)
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Namespace, "namespace", podNamespace(), "namespace of the Repository")
	f.StringVar(&o.Repository, "repository", "", "Repository whose restic repositories to unlock")
	f.StringVar(&o.ScratchDir, "scratch-dir", agent.DefaultScratchDir, "folder for restic's temporary files")
	return cmd
}

func newForgetCommand(g *globalFlags) *cobra.Command {
	var o agent.ForgetOptions
	cmd := &cobra.Command{
		Use:   "forget",
		Short: "Forget and prune the restic data of deleted WipeOut Snapshots (the retention Job)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := g.agent()
			if err != nil {
				return err
			}
			return a.Forget(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Namespace, "namespace", podNamespace(), "namespace of the Repositories")
	f.StringSliceVar(&o.Repositories, "repository", nil, "Repository whose forget marks to act on; repeat or comma-separate for more")
	f.StringVar(&o.ScratchDir, "scratch-dir", agent.DefaultScratchDir, "folder for restic's temporary files")
	return cmd
}
