package framework

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// RunMain starts one control plane for a whole test package, runs its tests
// and stops it, then exits with the tests' code. Use it from TestMain:
//
//	var env *framework.ControlPlane
//	func TestMain(m *testing.M) { framework.RunMain(m, framework.Options{}, &env) }
//
// One control plane per package keeps a cold start (tens of seconds on two
// cores) out of every test.
func RunMain(m *testing.M, o Options, out **ControlPlane) {
	RunMainThen(m, o, out, nil)
}

// RunMainThen is RunMain with a check that runs after the tests passed,
// while the control plane still runs (e.g. over every server's log); its
// error fails the package.
func RunMainThen(m *testing.M, o Options, out **ControlPlane, after func() error) {
	cp, err := Start(context.Background(), o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "start control plane: %v\n", err)
		os.Exit(1)
	}
	*out = cp
	code := m.Run()
	if code == 0 && after != nil {
		if err := after(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL after the tests: %v\n", err)
			code = 1
		}
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "control plane logs were in %s/logs (set KUBESTASH_KEEP_ENV=1 to keep them)\n", cp.Dir)
	}
	cp.Stop()
	os.Exit(code)
}
