package localnode

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// proc is one container's process group.
type proc struct {
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{}
	// exitCode and signal are set when done is closed.
	exitCode int32
	signal   syscall.Signal
}

// startProc runs argv (argv[0] as the process sees it, path the executable)
// in a process group of its own. Pdeathsig kills the leader if this
// program dies; signalGroup reaches the rest of the group.
func startProc(path string, argv, env []string, dir, logPath string) (*proc, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open container log: %w", err)
	}
	cmd := &exec.Cmd{
		Path:   path,
		Args:   argv,
		Env:    env,
		Dir:    dir,
		Stdout: logf,
		Stderr: logf,
		// No stdin, as a container without stdin: true.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, started: time.Now(), done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.exitCode, p.signal = exitStatus(cmd, err)
		// The container ends with its first process: so do the others
		// of its group, as in a PID namespace.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		close(p.done)
	}()
	return p, nil
}

// exitStatus is the exit code a container runtime reports: the process's
// status, or 128+N when signal N killed it.
func exitStatus(cmd *exec.Cmd, err error) (int32, syscall.Signal) {
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return 128, 0
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return int32(cmd.ProcessState.ExitCode()), 0
	}
	if ws.Signaled() {
		return 128 + int32(ws.Signal()), ws.Signal()
	}
	return int32(ws.ExitStatus()), 0
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// signalGroup signals every process of the group.
func (p *proc) signalGroup(sig syscall.Signal) {
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// resolveExecutable finds the host file of a container's executable: a path
// translated through the mounts, or a name on the container's PATH. It
// returns "" when there is none on this host.
func resolveExecutable(name string, translate func(string) string, pathEnv string) string {
	if strings.Contains(name, "/") {
		p := translate(name)
		if isExecutable(p) {
			return p
		}
		return ""
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			continue
		}
		p := filepath.Join(translate(dir), name)
		if isExecutable(p) {
			return p
		}
	}
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// tail returns the last lines of a file, at most maxBytes, for the
// termination message of a failed container (FallbackToLogsOnError).
func tail(p string, lines, maxBytes int) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	s := strings.TrimRight(string(b), "\n")
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	s = strings.Join(parts, "\n")
	if len(s) > maxBytes {
		s = s[len(s)-maxBytes:]
	}
	return s
}
