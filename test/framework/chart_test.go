package framework

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLogLinesAfterUninstall: what a release's pods log once its uninstall
// began (helm deleted their RBAC under them) is not counted; what they
// logged before, and what a later release logs, is.
func TestLogLinesAfterUninstall(t *testing.T) {
	dir := t.TempDir()
	r := &ChartRelease{Name: ChartName, logDir: dir}
	began := time.Date(2026, 12, 8, 0, 53, 30, 0, time.UTC)
	old := fmt.Sprintf("%s-controller-x_controller_aaa%s%d.log", ChartName, untilMark, began.UnixNano())
	require.NoError(t, os.WriteFile(filepath.Join(dir, old), []byte(
		"I1208 00:50:00.000000       1 x.go:1] fine\n"+
			"E1208 00:53:00.000000       1 x.go:1] before: is forbidden\n"+
			"E1208 00:53:36.261345       1 x.go:1] during the uninstall: is forbidden\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ChartName+"-controller-y_controller_bbb.log"), []byte(
		"E1208 00:55:00.000000       1 x.go:1] later release: is forbidden\n"), 0o644))

	lines, err := r.LogLines("controller", "forbidden")
	require.NoError(t, err)
	require.Len(t, lines, 2)
	assert.Contains(t, lines[0], "before: is forbidden")
	assert.Contains(t, lines[1], "later release: is forbidden")
}

func TestKlogTime(t *testing.T) {
	near := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		line string
		want time.Time
		ok   bool
	}{
		{line: "E1208 00:53:36.261345       1 leaderelection.go:331] x", want: time.Date(2026, 12, 8, 0, 53, 36, 261345000, time.UTC), ok: true},
		{line: "  continued line", ok: false},
		{line: "X1208 00:53:36.261345 not klog", ok: false},
	}
	for _, tt := range tests {
		got, ok := klogTime(tt.line, near)
		assert.Equal(t, tt.ok, ok, tt.line)
		if tt.ok {
			assert.Equal(t, tt.want, got, tt.line)
		}
	}
}
