// Command kubectl-kubestash is the kubectl plugin `kubectl kubestash`
// (pkg/kubectlplugin): put it on PATH.
package main

import (
	"os"

	"kubestash.dev/kubestash/pkg/kubectlplugin"
)

func main() {
	os.Exit(kubectlplugin.Execute())
}
