package snapshotrest

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"strconv"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/klog/v2"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/browse"
)

// The subresources snapshots/files and snapshots/download are
// rest.Connecters with GET only, so that authorization is the ordinary
// one (verb get on snapshots/files or snapshots/download, by RBAC) and the
// handler owns the response: a download sets Content-Length and streams
// restic's output as it comes, never holding a file in memory.

// FilesREST serves snapshots/files: a SnapshotFileList.
type FilesREST struct {
	Browser *browse.Browser
}

var (
	_ rest.Connecter = &FilesREST{}
	_ rest.Connecter = &DownloadREST{}
)

// New is the kind of the answer.
func (r *FilesREST) New() runtime.Object { return &catalog.SnapshotFileList{} }

// Destroy has nothing to release.
func (r *FilesREST) Destroy() {}

// ConnectMethods is GET only.
func (r *FilesREST) ConnectMethods() []string { return []string{http.MethodGet} }

// NewConnectOptions are the query parameters.
func (r *FilesREST) NewConnectOptions() (runtime.Object, bool, string) {
	return &catalog.SnapshotFilesOptions{}, false, ""
}

// Connect lists the Snapshot's files.
func (r *FilesREST) Connect(ctx context.Context, name string, opts runtime.Object, responder rest.Responder) (http.Handler, error) {
	o, ok := opts.(*catalog.SnapshotFilesOptions)
	if !ok {
		return nil, fmt.Errorf("invalid options object: %T", opts)
	}
	return http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		list, err := r.Browser.List(ctx, name, o)
		if err != nil {
			responder.Error(err)
			return
		}
		responder.Object(http.StatusOK, list)
	}), nil
}

// DownloadREST serves snapshots/download: a file's bytes, or a tar of a
// directory.
type DownloadREST struct {
	Browser *browse.Browser
}

// New is the Snapshot, as pods/proxy has the Pod: the answer is bytes.
func (r *DownloadREST) New() runtime.Object { return &catalog.Snapshot{} }

// Destroy has nothing to release.
func (r *DownloadREST) Destroy() {}

// ConnectMethods is GET only.
func (r *DownloadREST) ConnectMethods() []string { return []string{http.MethodGet} }

// NewConnectOptions are the query parameters.
func (r *DownloadREST) NewConnectOptions() (runtime.Object, bool, string) {
	return &catalog.SnapshotDownloadOptions{}, false, ""
}

// Connect streams the file or the tar.
func (r *DownloadREST) Connect(ctx context.Context, name string, opts runtime.Object, responder rest.Responder) (http.Handler, error) {
	o, ok := opts.(*catalog.SnapshotDownloadOptions)
	if !ok {
		return nil, fmt.Errorf("invalid options object: %T", opts)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		d, err := r.Browser.OpenDownload(ctx, name, o)
		if err != nil {
			responder.Error(err)
			return
		}
		defer d.Close()
		h := w.Header()
		h.Set("Content-Type", d.ContentType)
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": d.Name}))
		h.Set("X-Content-Type-Options", "nosniff")
		if d.Size >= 0 {
			h.Set("Content-Length", strconv.FormatInt(d.Size, 10))
		}
		w.WriteHeader(http.StatusOK)
		if err := d.WriteTo(ctx, w); err != nil {
			if ctx.Err() == nil {
				klog.ErrorS(err, "Download failed after its first byte")
			}
			// The status is sent: abort the connection, so that the
			// client sees a broken download, not a short file.
			panic(http.ErrAbortHandler)
		}
	}), nil
}
