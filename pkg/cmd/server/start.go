// Package server is the command line of the catalog server: flags,
// configuration and run, as kubernetes/sample-apiserver has it, without
// etcd.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/sets"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericfilters "k8s.io/apiserver/pkg/server/filters"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/util/compatibility"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	netutils "k8s.io/utils/net"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/apiserver"
	"kubestash.dev/kubestash/pkg/backenddirs"
	"kubestash.dev/kubestash/pkg/browse"
	"kubestash.dev/kubestash/pkg/store"
	"kubestash.dev/kubestash/pkg/version"
)

// ServiceName is the in-cluster name of the server, in the SANs of a
// self-signed serving certificate: the aggregator checks the certificate
// against <service>.<namespace>.svc.
const ServiceName = "catalog-apiserver.kubestash.svc"

// Options are the flags of the catalog server.
type Options struct {
	RecommendedOptions *genericoptions.RecommendedOptions
	// PollInterval is how often backends are scanned for others' changes.
	PollInterval time.Duration
	// InformerSyncTimeout bounds the wait for the cluster's
	// BackupStorages at start.
	InformerSyncTimeout time.Duration
	// AlternateDNS are extra names of a self-signed serving certificate.
	AlternateDNS []string
	// LocalBackendDirs lists the directories under which local
	// BackupStorages may be.
	LocalBackendDirs string
	// MaxObjectSize bounds a catalog file and an object written through the
	// API; EventLogBytes bounds what the watch event log holds. Anyone who
	// can write into a bucket can plant a file, so nothing read from one may
	// take memory without bound.
	MaxObjectSize resource.QuantityValue
	EventLogBytes resource.QuantityValue
	// ResticBinary, BrowseScratchDir and MaxBrowseRequests configure
	// snapshots/files and snapshots/download.
	ResticBinary      string
	BrowseScratchDir  string
	MaxBrowseRequests int
	// ShutdownDelay keeps serving after SIGTERM, /readyz failing, while
	// the Service's endpoints drop the pod: a roll loses no request.
	ShutdownDelay time.Duration
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	o := &Options{
		RecommendedOptions: genericoptions.NewRecommendedOptions("",
			apiserver.Codecs.LegacyCodec(catalogv1alpha1.SchemeGroupVersion)),
		PollInterval:        store.DefaultPollInterval,
		InformerSyncTimeout: 5 * time.Minute,
		AlternateDNS:        []string{ServiceName, "catalog-apiserver.kubestash.svc.cluster.local"},
		MaxObjectSize:       resource.QuantityValue{Quantity: *resource.NewQuantity(store.DefaultMaxObjectSize, resource.BinarySI)},
		EventLogBytes:       resource.QuantityValue{Quantity: *resource.NewQuantity(store.DefaultEventLogBytes, resource.BinarySI)},
		MaxBrowseRequests:   browse.DefaultMaxConcurrent,
	}
	// The catalog lives in the backup backends: no etcd flags, no etcd
	// health check; the RESTOptionsGetter is the catalog's.
	o.RecommendedOptions.Etcd = nil
	// HTTP/1.1 by default: kube-apiserver's aggregation proxy is our only
	// client, and Go's HTTP/2 server hands a response to its connection
	// 4 KiB at a time. Downloading a 443 MB Snapshot through the API took
	// 6.9 s over HTTP/2 and 5.1 s over HTTP/1.1 (the catalog server's CPU
	// 1.8 s and 1.1 s; docs/browse.md). --disable-http2-serving=false
	// restores HTTP/2.
	o.RecommendedOptions.SecureServing.DisableHTTP2Serving = true
	return o
}

// NewCommand returns the command that runs the server until ctx ends.
func NewCommand(ctx context.Context, o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "apiserver",
		Version: version.Version,
		Short:   "Serve the KubeStash backup catalog (catalog.kubestash.com) from the backup backends",
		Long: `Serve repositories, snapshots, backupsessions and restoresessions of
catalog.kubestash.com/v1alpha1 as an aggregated API server, reading and
writing them in the buckets and directories of the cluster's BackupStorages.`,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(c.Context())
		},
	}
	cmd.SetContext(ctx)
	fs := cmd.Flags()
	o.RecommendedOptions.AddFlags(fs)
	utilfeature.DefaultMutableFeatureGate.AddFlag(fs)
	fs.DurationVar(&o.PollInterval, "poll-interval", o.PollInterval,
		"How often every backend is scanned for changes made by others (another cluster, a person with a bucket tool).")
	fs.DurationVar(&o.InformerSyncTimeout, "informer-sync-timeout", o.InformerSyncTimeout,
		"How long to wait at start for the BackupStorages, Namespaces and BackupConfigurations of the cluster.")
	fs.StringSliceVar(&o.AlternateDNS, "self-signed-cert-dns", o.AlternateDNS,
		"Names of the self-signed serving certificate made when no --tls-cert-file is given.")
	fs.StringVar(&o.LocalBackendDirs, "local-backend-dirs", o.LocalBackendDirs,
		"Comma-separated directories under which local BackupStorages may be (their hostPath, as this server runs on the node or mounts the same path, or their mountPath); empty: none. System directories (/usr, /etc, /var/lib/kubelet, ...) are refused whatever this says.")
	fs.Var(&o.MaxObjectSize, "max-object-size",
		"Largest catalog file served, and largest object (as its YAML file) accepted through the API (413 beyond it). "+
			"Larger files in a backend are skipped without being read, counted in kubestash_catalog_skipped_files_total{reason=\"too-large\"} and logged.")
	fs.Var(&o.EventLogBytes, "event-log-bytes",
		"Most file bytes of objects the watch event log of each resource holds (besides its count); watchers older than what it holds relist.")
	fs.StringVar(&o.ResticBinary, "restic-binary", o.ResticBinary,
		"The restic that snapshots/files and snapshots/download run; empty: the one next to this program, else restic on PATH.")
	fs.StringVar(&o.BrowseScratchDir, "browse-scratch-dir", o.BrowseScratchDir,
		"Folder for restic's cache and temporary files when browsing snapshots; empty: kubestash-browse in the temporary directory.")
	fs.IntVar(&o.MaxBrowseRequests, "max-browse-requests", o.MaxBrowseRequests,
		"Most snapshots/files and snapshots/download requests running restic at once; more are answered 429.")
	fs.DurationVar(&o.ShutdownDelay, "shutdown-delay-duration", o.ShutdownDelay,
		"How long to keep serving after SIGTERM, with /readyz failing, so that the Service's endpoints and kube-proxy drop this replica before it stops; keep it below the pod's terminationGracePeriodSeconds.")
	return cmd
}

// Validate checks the flags.
func (o *Options) Validate() error {
	errs := o.RecommendedOptions.Validate()
	if o.PollInterval <= 0 {
		errs = append(errs, errors.New("--poll-interval must be positive"))
	}
	if o.MaxObjectSize.Value() <= 0 {
		errs = append(errs, errors.New("--max-object-size must be positive"))
	}
	if o.EventLogBytes.Value() < o.MaxObjectSize.Value() {
		errs = append(errs, errors.New("--event-log-bytes must be at least --max-object-size"))
	}
	if o.MaxBrowseRequests <= 0 {
		errs = append(errs, errors.New("--max-browse-requests must be positive"))
	}
	if o.ShutdownDelay < 0 {
		errs = append(errs, errors.New("--shutdown-delay-duration must not be negative"))
	}
	if _, err := backenddirs.Parse(o.LocalBackendDirs); err != nil {
		errs = append(errs, fmt.Errorf("--local-backend-dirs: %w", err))
	}
	return utilerrors.NewAggregate(errs)
}

// Config builds the server configuration from the flags.
func (o *Options) Config() (*apiserver.Config, error) {
	if err := o.RecommendedOptions.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", o.AlternateDNS,
		[]net.IP{netutils.ParseIPSloppy("127.0.0.1")}); err != nil {
		return nil, fmt.Errorf("create self-signed certificates: %w", err)
	}
	cfg := genericapiserver.NewRecommendedConfig(apiserver.Codecs)
	cfg.Serializer = apiserver.NegotiatedSerializer
	cfg.OpenAPIConfig = apiserver.OpenAPIConfig()
	cfg.OpenAPIV3Config = apiserver.OpenAPIV3Config()
	cfg.FeatureGate = utilfeature.DefaultFeatureGate
	cfg.EffectiveVersion = compatibility.DefaultBuildEffectiveVersion()
	// A download streams as long as the file takes, like a watch: no
	// request timeout, and it does not count against max-in-flight (the
	// browse limit bounds it). kube-apiserver's own --request-timeout
	// still bounds it when it comes through the aggregation layer.
	cfg.LongRunningFunc = genericfilters.BasicLongRunningRequestCheck(sets.NewString("watch"), sets.NewString(catalogv1alpha1.SubresourceDownload))
	if err := o.RecommendedOptions.ApplyTo(cfg); err != nil {
		return nil, err
	}
	cfg.ShutdownDelayDuration = o.ShutdownDelay
	dirs, err := backenddirs.Parse(o.LocalBackendDirs)
	if err != nil {
		return nil, fmt.Errorf("--local-backend-dirs: %w", err)
	}
	return &apiserver.Config{
		GenericConfig: cfg,
		ExtraConfig: apiserver.ExtraConfig{
			PollInterval:        o.PollInterval,
			InformerSyncTimeout: o.InformerSyncTimeout,
			LocalBackendDirs:    dirs,
			MaxObjectSize:       o.MaxObjectSize.Value(),
			EventLogBytes:       o.EventLogBytes.Value(),
			Browse: apiserver.BrowseConfig{
				ResticBinary:  o.ResticBinary,
				ScratchDir:    o.BrowseScratchDir,
				MaxConcurrent: o.MaxBrowseRequests,
			},
		},
	}, nil
}

// Run serves until ctx ends.
func (o *Options) Run(ctx context.Context) error {
	cfg, err := o.Config()
	if err != nil {
		return err
	}
	s, err := cfg.Complete().New(ctx)
	if err != nil {
		return err
	}
	return s.GenericAPIServer.PrepareRun().RunWithContext(ctx)
}
