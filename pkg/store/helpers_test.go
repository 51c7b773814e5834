package store

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"

	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/test/framework"
)

// The example Pods of k8s.io/apiserver, which the storage conformance
// cases store, written as YAML of example.apiserver.k8s.io/v1.
var (
	exampleScheme = runtime.NewScheme()
	exampleCodecs = serializer.NewCodecFactory(exampleScheme)
	podCodec      runtime.Codec
)

func init() {
	metav1.AddToGroupVersion(exampleScheme, metav1.SchemeGroupVersion)
	utilruntime.Must(example.AddToScheme(exampleScheme))
	utilruntime.Must(examplev1.AddToScheme(exampleScheme))
	info, ok := runtime.SerializerInfoForMediaType(exampleCodecs.SupportedMediaTypes(), runtime.ContentTypeYAML)
	if !ok {
		panic("no YAML serializer")
	}
	podCodec = exampleCodecs.CodecForVersions(info.Serializer, exampleCodecs.UniversalDeserializer(), examplev1.SchemeGroupVersion, nil)
}

func newPod() runtime.Object     { return &example.Pod{} }
func newPodList() runtime.Object { return &example.PodList{} }

// minio is the package's MinIO, nil under -short.
var minio *framework.MinIO

// knownLimitations are conformance subcases that fail for a reason this
// store can't remove, explained in conformance_test.go. They are skipped
// (through -test.skip) unless CATALOG_CONFORMANCE_STRICT is set.
var knownLimitations = []string{
	`TestConformance/.*/WatchSemantics/.*sendInitialEvents=false,_RV=1$`,
}

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv("CATALOG_CONFORMANCE_STRICT") == "" {
		skip := strings.Join(knownLimitations, "|")
		if prev := flag.Lookup("test.skip").Value.String(); prev != "" {
			skip = prev + "|" + skip
		}
		if err := flag.Set("test.skip", skip); err != nil {
			panic(err)
		}
	}
	if testing.Short() {
		os.Exit(m.Run())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	cp, err := framework.Start(ctx, framework.Options{MinIOOnly: true})
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "start MinIO: %v\n", err)
		os.Exit(1)
	}
	minio = cp.MinIO
	code := m.Run()
	cp.Stop()
	os.Exit(code)
}

var prefixes atomic.Int64

// backendKinds are the backends every store test runs over.
type backendKind struct {
	name string
	new  func(t *testing.T) backend.Backend
}

func backendKinds() []backendKind {
	return []backendKind{
		{name: "local", new: func(t *testing.T) backend.Backend {
			b, err := backend.NewLocal(t.TempDir())
			require.NoError(t, err)
			return b
		}},
		{name: "minio", new: func(t *testing.T) backend.Backend {
			if minio == nil {
				t.Skip("MinIO is not started under -short")
			}
			return newMinIOBackend(t, fmt.Sprintf("catalog-test-%d-%d", time.Now().UnixNano(), prefixes.Add(1)))
		}},
	}
}

func newMinIOBackend(t *testing.T, prefix string) backend.Backend {
	b, err := backend.NewS3(backend.S3Config{
		Endpoint: minio.Endpoint, Bucket: minio.Bucket, Prefix: prefix, Region: "us-east-1",
		AccessKeyID: minio.AccessKey, SecretAccessKey: minio.SecretKey,
		Timeout: 5 * time.Second, MaxRetries: 1,
	})
	require.NoError(t, err)
	return b
}

// backends is a fixed set of storages; a storage can be added later.
type backends map[string]backend.Backend

func (b backends) Backend(id string) (backend.Backend, bool) {
	be, ok := b[id]
	return be, ok
}

func (b backends) Storages() []string {
	ids := make([]string, 0, len(b))
	for id := range b {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// pathLocator puts registry key "/pods/ns/name" in file "pods/ns/name.yaml"
// of one storage. Key elements are path-escaped; an empty one (the
// conformance cases use namespace "" and name "") becomes "%2F", which no
// escaped element can be.
type pathLocator struct{ storage string }

const emptyElement = "%2F"

func (l pathLocator) Locate(_ context.Context, key string, _ runtime.Object) (Location, error) {
	return Location{Storage: l.storage, Key: keyToFile(key)}, nil
}

func keyToFile(key string) string {
	els := strings.Split(strings.TrimPrefix(key, "/"), "/")
	for i, el := range els {
		if el == "" {
			els[i] = emptyElement
		} else {
			els[i] = url.PathEscape(el)
		}
	}
	return strings.Join(els, "/") + ".yaml"
}

func fileToKey(file string) (string, error) {
	if !strings.HasSuffix(file, ".yaml") {
		return "", fmt.Errorf("%s is not a .yaml file", file)
	}
	els := strings.Split(strings.TrimSuffix(file, ".yaml"), "/")
	for i, el := range els {
		if el == emptyElement {
			els[i] = ""
			continue
		}
		u, err := url.PathUnescape(el)
		if err != nil {
			return "", err
		}
		els[i] = u
	}
	return "/" + strings.Join(els, "/"), nil
}

// prefixScanner lists every .yaml file under a prefix.
type prefixScanner struct{ prefix string }

func (p prefixScanner) Scan(ctx context.Context, _ string, b backend.Backend) ([]backend.Object, error) {
	res, err := b.List(ctx, p.prefix, backend.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := res.Objects[:0]
	for _, o := range res.Objects {
		if strings.HasSuffix(o.Key, ".yaml") {
			out = append(out, o)
		}
	}
	return out, nil
}

// pathAdmitter serves a file under the key its path encodes (the inverse of
// pathLocator), so that every key the conformance cases write, even
// "/pods/" for a Pod without a name, reads back as written.
type pathAdmitter struct{}

func (pathAdmitter) Admit(_ string, file string, _ runtime.Object) (string, error) {
	return fileToKey(file)
}

// podConfig is a store of example Pods over the given storages.
func podConfig(bs backends, locateIn string) Config {
	cfg := DefaultConfig()
	cfg.Codec = podCodec
	cfg.NewFunc, cfg.NewListFunc = newPod, newPodList
	cfg.ResourcePrefix = "/pods"
	cfg.Backends = bs
	cfg.Locator = pathLocator{storage: locateIn}
	cfg.Scanner = prefixScanner{prefix: "pods/"}
	cfg.Admitter = pathAdmitter{}
	cfg.PollInterval = 0 // tests poll when they want to
	return cfg
}

// startStore starts a store and waits for its index.
func startStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := New(cfg)
	require.NoError(t, err)
	s.Start(context.Background())
	t.Cleanup(s.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, s.WaitReady(ctx))
	return s
}
