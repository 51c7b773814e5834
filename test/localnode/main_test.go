package localnode

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/klog/v2"

	"kubestash.dev/kubestash/test/framework"
)

// One control plane and one local node for the package; tests that stop a
// node start their own.
var (
	env  *framework.ControlPlane
	node *Node
	// helperBin is where TestInClusterClient builds testdata/incluster:
	// the image rule "*kubestash*" of the shared node points at it, as the
	// demo's points at bin/agent.
	helperBin string
)

func TestMain(m *testing.M) {
	klog.InitFlags(nil)
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	os.Exit(runWithNode(m))
}

func runWithNode(m *testing.M) int {
	var err error
	env, err = framework.Start(context.Background(), framework.Options{NoMinIO: true, NoCRDs: true})
	if err != nil {
		fmt.Fprintf(os.Stderr, "start control plane: %v\n", err)
		return 1
	}
	defer env.Stop()
	helperBin = filepath.Join(env.Dir, "incluster")
	node, err = New(env.Config, Options{
		WorkDir: filepath.Join(env.Dir, "localnode"),
		Images: []ImageRule{
			{Pattern: "busybox*", Binary: "/bin/sh"},
			{Pattern: "*kubestash*", Binary: helperBin},
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "local node: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- node.Run(ctx) }()
	select {
	case <-node.Ready():
	case err := <-runErr:
		fmt.Fprintf(os.Stderr, "local node: %v\n", err)
		cancel()
		return 1
	case <-time.After(time.Minute):
		fmt.Fprintln(os.Stderr, "local node not ready after a minute")
		cancel()
		return 1
	}

	code := m.Run()

	cancel()
	if err := <-runErr; err != nil {
		fmt.Fprintf(os.Stderr, "local node: %v\n", err)
		code = 1
	}
	// Whatever the tests did, nothing the node started may outlive it. A
	// grandchild killed with its process group may take a moment to exit
	// after the node has reaped its own children.
	pids := processesOf(node, "")
	for deadline := time.Now().Add(5 * time.Second); len(pids) > 0 && time.Now().Before(deadline); pids = processesOf(node, "") {
		time.Sleep(100 * time.Millisecond)
	}
	if len(pids) > 0 {
		fmt.Fprintf(os.Stderr, "processes of the local node still running after it stopped: %v\n", pids)
		code = 1
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "control plane and container logs were in %s (set KUBESTASH_KEEP_ENV=1 to keep them)\n", env.Dir)
	}
	return code
}
