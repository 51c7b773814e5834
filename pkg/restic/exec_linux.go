//go:build linux

package restic

import (
	"os/exec"
	"syscall"
)

// setSysProcAttr asks the kernel to send restic SIGTERM when the agent
// dies, even by SIGKILL: restic then removes its lock and exits instead of
// running on as an orphan. In a container whose PID 1 is the agent, the
// container ends with it anyway and takes restic down by SIGKILL (its lock
// stays; see the agent's removeDeadLocks); this matters where the agent is
// not PID 1 (a shell or init in front of it, a developer's shell).
func setSysProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
