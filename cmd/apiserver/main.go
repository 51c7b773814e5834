// Command apiserver serves the KubeStash backup catalog
// (catalog.kubestash.com) from the backup backends, as an aggregated API
// server behind kube-apiserver.
package main

import (
	"os"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/cli"

	"kubestash.dev/kubestash/pkg/cmd/server"
)

func main() {
	ctx := genericapiserver.SetupSignalContext()
	os.Exit(cli.Run(server.NewCommand(ctx, server.NewOptions())))
}
