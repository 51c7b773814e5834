// Package kubectlplugin is `kubectl kubestash`: browse and download what a
// Snapshot holds, start, pause and resume backups, and restore, through
// the Kubernetes API with the user's kubeconfig (never restic, never the
// Secrets). cmd/kubectl-kubestash is its main.
package kubectlplugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
)

// IOStreams are where a command reads and writes.
type IOStreams struct {
	In          io.Reader
	Out, ErrOut io.Writer
}

// Clients are what a command talks to: the catalog and core clientset,
// an HTTP client for streamed downloads, and the namespace of the
// kubeconfig's context or of -n.
type Clients struct {
	Client    versioned.Interface
	Config    *rest.Config
	HTTP      *http.Client
	Namespace string
}

// Options hold the global flags (those of kubectl: --kubeconfig, --context,
// -n/--namespace, --as, ...) and how to make the Clients.
type Options struct {
	IOStreams
	loading   *clientcmd.ClientConfigLoadingRules
	overrides *clientcmd.ConfigOverrides
	// NewClients makes the Clients; tests replace it.
	NewClients func() (*Clients, error)
	// Now is the clock (names of sessions).
	Now func() time.Time
	// PollInterval of restore --wait.
	PollInterval time.Duration
}

func (o *Options) clients() (*Clients, error) {
	if o.NewClients != nil {
		return o.NewClients()
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(o.loading, o.overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, err
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "kubectl-kubestash"
	c, err := versioned.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	return &Clients{Client: c, Config: cfg, HTTP: hc, Namespace: ns}, nil
}

// NewCommand is `kubectl kubestash` with its subcommands.
func NewCommand(streams IOStreams) *cobra.Command {
	o := &Options{
		IOStreams:    streams,
		loading:      clientcmd.NewDefaultClientConfigLoadingRules(),
		overrides:    &clientcmd.ConfigOverrides{},
		Now:          time.Now,
		PollInterval: 2 * time.Second,
	}
	return newCommand(o)
}

func newCommand(o *Options) *cobra.Command {
	root := &cobra.Command{
		Use:   "kubectl-kubestash",
		Short: "Browse, download and restore KubeStash backups through the Kubernetes API",
		Long: `kubectl kubestash browses and downloads what a Snapshot holds, starts,
pauses and resumes backups, and restores, using your kubeconfig and RBAC:
listing needs get on snapshots/files, downloading get on snapshots/download.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl kubestash",
		},
	}
	root.SetIn(o.In)
	root.SetOut(o.Out)
	root.SetErr(o.ErrOut)
	if o.loading != nil {
		fs := root.PersistentFlags()
		fs.StringVar(&o.loading.ExplicitPath, clientcmd.RecommendedConfigPathFlag, "", "Path to the kubeconfig file to use for CLI requests.")
		clientcmd.BindOverrideFlags(o.overrides, fs, kubectlOverrideFlags())
	}
	root.AddCommand(
		newLsCommand(o), newCatCommand(o), newDownloadCommand(o),
		newTriggerCommand(o), newPauseCommand(o, true), newPauseCommand(o, false),
		newRestoreCommand(o), newUnlockCommand(o),
	)
	return root
}

// kubectlOverrideFlags are kubectl's names for the kubeconfig overrides
// (-n, --context, --cluster, --user, --server, --as, ...).
func kubectlOverrideFlags() clientcmd.ConfigOverrideFlags {
	f := clientcmd.RecommendedConfigOverrideFlags("")
	f.Timeout.ShortName = ""
	return f
}

// Execute runs the command with os.Args and returns the exit code,
// printing a failure as kubectl does.
func Execute() int {
	cmd := NewCommand(IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	return Run(cmd, os.Args[1:], os.Stderr)
}

// Run runs cmd with args; a failure is printed to errOut as kubectl prints
// it and gives exit code 1.
func Run(cmd *cobra.Command, args []string, errOut io.Writer) int {
	cmd.SetArgs(args)
	// Ctrl-C ends requests and waits cleanly: a download in progress
	// leaves no partial file.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(errOut, ErrorMessage(err))
		return 1
	}
	return 0
}

// ErrorMessage is err as kubectl prints it: `Error from server (Reason):
// message` for an API error, `error: message` otherwise.
func ErrorMessage(err error) string {
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Status == metav1.StatusFailure {
		s := st.Status()
		if s.Reason == "" || s.Reason == metav1.StatusReasonUnknown {
			return "Error from server: " + s.Message
		}
		return fmt.Sprintf("Error from server (%s): %s", s.Reason, s.Message)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "error: ") {
		msg = "error: " + msg
	}
	return msg
}

// usageError is a wrong invocation: printed with a hint to --help.
func usageError(cmd *cobra.Command, format string, a ...any) error {
	return fmt.Errorf("%s\nSee '%s -h' for help and examples", fmt.Sprintf(format, a...), cmd.CommandPath())
}
