//go:build !linux

package restic

import "os/exec"

func setSysProcAttr(*exec.Cmd) {}
