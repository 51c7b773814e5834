//go:build linux

package restic

import (
	"os/exec"
	"syscall"
)

// setSysProcAttr asks the kernel to send restic SIGTERM when the agent
// dies, even by SIGKILL: restic then removes its lock and exits instead of
// running on as an orphan (the local node runs Jobs as plain processes, and
// there is no container to take restic down with the agent).
func setSysProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
