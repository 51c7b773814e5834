// Command localnode runs the local node of test/localnode against a
// cluster, for hack/dev-env.sh and hack/demo.sh: it registers a Node, binds
// this project's Pods to it and runs their containers as local processes
// until it receives SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"kubestash.dev/kubestash/test/localnode"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	klog.InitFlags(nil)
	var (
		kubeconfig = flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster (default $KUBECONFIG)")
		nodeName   = flag.String("node-name", localnode.DefaultNodeName, "name of the Node to register")
		selector   = flag.String("selector", localnode.DefaultSelector, "label selector of the unscheduled Pods to bind to this node")
		workDir    = flag.String("work-dir", "", "folder for per-pod files (default: a temporary folder, removed on exit)")
		logDir     = flag.String("log-dir", "", "folder for container logs, <log-dir>/<namespace>/<pod>/<container>.log (default: <work-dir>/logs)")
		inherit    = flag.String("inherit-env", "PATH,TMPDIR", "comma-separated variables of this process that every container gets")
		images     listFlag
		env        listFlag
	)
	flag.Var(&images, "image", "PATTERN=BINARY: run images matching PATTERN (\"*\" is any text) with BINARY; repeatable, first match wins (default: *kubestash*=<folder of this program>/agent)")
	flag.Var(&env, "env", "NAME=VALUE added to every container's environment; repeatable")
	flag.Parse()

	if err := run(*kubeconfig, *nodeName, *selector, *workDir, *logDir, *inherit, images, env); err != nil {
		fmt.Fprintf(os.Stderr, "localnode: %v\n", err)
		os.Exit(1)
	}
}

func run(kubeconfig, nodeName, selector, workDir, logDir, inherit string, images, env []string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	sel, err := labels.Parse(selector)
	if err != nil {
		return fmt.Errorf("selector %q: %w", selector, err)
	}
	if len(images) == 0 {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find this program's folder for the default image rule: %w", err)
		}
		images = []string{"*kubestash*=" + filepath.Join(filepath.Dir(self), "agent")}
	}
	o := localnode.Options{NodeName: nodeName, Selector: sel, WorkDir: workDir, LogDir: logDir, Env: env, InheritEnv: []string{}}
	for _, s := range strings.Split(inherit, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.InheritEnv = append(o.InheritEnv, s)
		}
	}
	for _, s := range images {
		r, err := localnode.ParseImageRule(s)
		if err != nil {
			return err
		}
		o.Images = append(o.Images, r)
	}
	for _, kv := range env {
		if !strings.Contains(kv, "=") {
			return fmt.Errorf("-env %q: want NAME=VALUE", kv)
		}
	}
	n, err := localnode.New(cfg, o)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		select {
		case <-n.Ready():
			klog.InfoS("Local node running", "node", n.Name(), "logDir", n.LogDir())
		case <-ctx.Done():
		}
	}()
	return n.Run(ctx)
}
