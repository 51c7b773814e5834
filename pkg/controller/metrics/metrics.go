// Package metrics serves the controller's /metrics, /healthz and /readyz,
// and counts its API requests by verb and resource
// (kubestash_controller_api_requests_total): the figure that tells how
// much load an idle controller puts on kube-apiserver and the catalog
// server. client-go's own request, workqueue and leader-election metrics
// are served too.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	// client-go's rest client, workqueue and leader election metrics.
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	"k8s.io/klog/v2"
)

var apiRequests = metrics.NewCounterVec(&metrics.CounterOpts{
	Namespace:      "kubestash",
	Subsystem:      "controller",
	Name:           "api_requests_total",
	Help:           "API requests the controller made, by verb (get, list, watch, create, update, patch, delete), API group and resource.",
	StabilityLevel: metrics.ALPHA,
}, []string{"verb", "group", "resource"})

func init() {
	legacyregistry.MustRegister(apiRequests)
}

// WrapTransport counts each request rt makes; use it as a rest.Config's
// WrapTransport.
func WrapTransport(rt http.RoundTripper) http.RoundTripper {
	return roundTripper{next: rt}
}

type roundTripper struct{ next http.RoundTripper }

func (c roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	verb, group, resource := Classify(req.Method, req.URL.Path, req.URL.Query().Get("watch") == "true")
	apiRequests.WithLabelValues(verb, group, resource).Inc()
	return c.next.RoundTrip(req)
}

// Classify names a request to kube-apiserver the way its audit log does:
// the verb (a GET is get, list or watch), the API group ("" for the core
// group) and the resource, with its subresource after a slash.
func Classify(method, path string, watch bool) (verb, group, resource string) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:] // api, v1
	case len(parts) >= 3 && parts[0] == "apis":
		group, parts = parts[1], parts[3:]
	default:
		return strings.ToLower(method), "", "other"
	}
	if len(parts) >= 2 && parts[0] == "namespaces" && len(parts) != 2 {
		parts = parts[2:] // namespaces/<ns>/<resource>...
	}
	named := false
	switch len(parts) {
	case 0:
		resource = "discovery"
	case 1:
		resource = parts[0]
	case 2:
		resource, named = parts[0], true
	default:
		resource, named = parts[0]+"/"+parts[2], true
	}
	switch method {
	case http.MethodGet:
		switch {
		case watch:
			verb = "watch"
		case named:
			verb = "get"
		default:
			verb = "list"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
		if !named {
			verb = "deletecollection"
		}
	default:
		verb = strings.ToLower(method)
	}
	return verb, group, resource
}

// Serve serves /metrics, /healthz and /readyz on addr until ctx ends.
// ready says whether the controller is ready (nil) or why not.
func Serve(ctx context.Context, addr string, ready func() error) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", legacyregistry.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s for metrics and health: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	klog.FromContext(ctx).Info("Serving metrics and health", "address", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics and health on %s: %w", addr, err)
	}
	return nil
}
