package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kubestash.dev/kubestash/test/framework"
)

// TestDocsSelfContained: what a user or contributor reads (README.md,
// docs/, the chart's README) points only at files of a clone: every
// relative link resolves inside the repository, and nothing names the
// workspace outside it (../shared).
func TestDocsSelfContained(t *testing.T) {
	root, err := framework.RepoRoot()
	require.NoError(t, err)
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	require.NoError(t, err)
	docs = append(docs, filepath.Join(root, "README.md"), filepath.Join(root, "charts", "kubestash-catalog", "README.md"))
	require.Greater(t, len(docs), 4, "README.md, the chart's README and docs/*.md")
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		require.NoError(t, err)
		rel, _ := filepath.Rel(root, doc)
		assert.False(t, strings.Contains(string(b), "../shared"), "%s names ../shared, a folder outside the repository", rel)
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			target, _, _ = strings.Cut(target, "#")
			p := filepath.Clean(filepath.Join(filepath.Dir(doc), target))
			inside, err := filepath.Rel(root, p)
			require.NoError(t, err)
			if !assert.False(t, strings.HasPrefix(inside, ".."), "%s links %s, outside the repository", rel, m[1]) {
				continue
			}
			_, err = os.Stat(p)
			assert.NoError(t, err, "%s links %s", rel, m[1])
		}
	}
}
