// Command controller runs KubeStash's controllers: it turns
// BackupConfigurations into Repositories, trigger CronJobs and backups.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"kubestash.dev/kubestash/pkg/backenddirs"
	"kubestash.dev/kubestash/pkg/controller/access"
	"kubestash.dev/kubestash/pkg/controller/manager"
	"kubestash.dev/kubestash/pkg/version"
)

func main() {
	klog.InitFlags(nil)
	var (
		kubeconfig = flag.String("kubeconfig", "", "kubeconfig file; empty: in-cluster configuration")
		o          = manager.Options{}
	)
	flag.StringVar(&o.AgentImage, "agent-image", "ghcr.io/kubestash-catalog/agent:"+version.Version, "image of the agent for the trigger CronJobs and the retention Jobs (make images builds it)")
	flag.IntVar(&o.Workers, "workers", 2, "workers per controller")
	flag.BoolVar(&o.LeaderElect, "leader-elect", true, "run only while holding the leader Lease")
	flag.StringVar(&o.LeaseNamespace, "leader-election-namespace", "kubestash", "namespace of the leader Lease")
	flag.StringVar(&o.LeaseName, "leader-election-name", "kubestash-controller", "name of the leader Lease")
	flag.DurationVar(&o.Resync, "resync", 30*time.Second, "how often everything is reconciled again")
	flag.DurationVar(&o.PendingTimeout, "pod-pending-timeout", 10*time.Minute, "how long a backup or restore pod may stay Pending before its session fails")
	flag.DurationVar(&o.FinishedJobTTL, "finished-job-ttl", 24*time.Hour, "how long the Jobs (and pods, and logs) of a finished BackupSession or RestoreSession are kept after they ended, once the session's outcome is recorded; 0: as long as the session exists")
	flag.DurationVar(&o.WipeOutDelay, "wipeout-delay", 30*time.Second, "how long after a WipeOut Snapshot is deleted its restic data is cleaned up, unless a session's retention Job does it first")
	qps := flag.Float64("kube-api-qps", 50, "requests per second to the API server (client-go's default of 5 delays session steps by seconds)")
	burst := flag.Int("kube-api-burst", 100, "burst of requests to the API server")
	flag.StringVar(&o.CatalogServerAccount, "catalog-server-account", access.DefaultCatalogServerAccount,
		"ServiceAccount (namespace/name) the catalog server runs as: it is granted get on each BackupStorage's Secret, by name; empty: no grants")
	localDirs := flag.String("local-backend-dirs", "", "comma-separated host directories under which local BackupStorages may be (hostPath, or where their volume is mounted into this controller); empty: none. System directories (/usr, /etc, /var/lib/kubelet, ...) are refused whatever this says")
	flag.StringVar(&o.MetricsAddr, "metrics-bind-address", "", "host:port serving /metrics (Prometheus), /healthz and /readyz, e.g. :8080; empty: not served")
	printVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *printVersion {
		fmt.Println("controller", version.Version)
		return
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var cfg *rest.Config
	var err error
	if *kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", *kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		klog.ErrorS(err, "Cannot load the client configuration")
		os.Exit(1)
	}
	if o.LocalBackendDirs, err = backenddirs.Parse(*localDirs); err != nil {
		klog.ErrorS(err, "Invalid --local-backend-dirs")
		os.Exit(2)
	}
	cfg.QPS, cfg.Burst = float32(*qps), *burst
	o.Config = cfg
	if err := manager.Run(ctx, o); err != nil {
		klog.ErrorS(err, "Controller failed")
		os.Exit(1)
	}
}
