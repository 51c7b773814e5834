package kubectlplugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
)

func newLsCommand(o *Options) *cobra.Command {
	var recursive bool
	cmd := &cobra.Command{
		Use:   "ls SNAPSHOT [PATH]",
		Short: "List a directory of a Snapshot, like ls -l",
		Long: `List a directory of a Snapshot (snapshots/files): permissions, owner uid
and gid, size, modification time and name, and "-> target" for a symlink.
PATH is relative to the backed-up volume's root; "/" (the default) is the
root. With -R the whole subtree is listed, each entry by its path.`,
		Example: `  kubectl kubestash ls s3-repo-pvc-backup-daily-1733580000 -n demo
  kubectl kubestash ls s3-repo-pvc-backup-daily-1733580000 /data/reports -R`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.clients()
			if err != nil {
				return err
			}
			p := "/"
			if len(args) == 2 {
				p = args[1]
			}
			items, err := listFiles(cmd.Context(), c, args[0], p, recursive)
			if err != nil {
				return err
			}
			return WriteTable(o.Out, items, recursive)
		},
	}
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "list the whole subtree")
	return cmd
}

// listFiles reads a listing, every page of it.
func listFiles(ctx context.Context, c *Clients, snap, p string, recursive bool) ([]catalogv1alpha1.SnapshotFile, error) {
	p = cleanPath(p)
	var all []catalogv1alpha1.SnapshotFile
	token := ""
	for {
		req := c.Client.CatalogV1alpha1().RESTClient().Get().Namespace(c.Namespace).
			Resource("snapshots").Name(snap).SubResource(catalogv1alpha1.SubresourceFiles).Param("path", p)
		if recursive {
			req = req.Param("recursive", "true")
		}
		if token != "" {
			req = req.Param("continue", token)
		}
		res := req.Do(ctx)
		if err := res.Error(); err != nil {
			return nil, err
		}
		raw, err := res.Raw()
		if err != nil {
			return nil, err
		}
		var l catalogv1alpha1.SnapshotFileList
		if err := json.Unmarshal(raw, &l); err != nil {
			return nil, fmt.Errorf("decoding the listing of %s: %w", p, err)
		}
		all = append(all, l.Items...)
		if token = l.Continue; token == "" || !recursive {
			return all, nil
		}
	}
}

// cleanPath makes p absolute in the snapshot ("data" is "/data"). A ".."
// is left for the server to refuse.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if strings.Contains(p, "..") {
		return p
	}
	return path.Clean(p)
}

// TimeFormat is the mtime column of ls (ls --time-style=long-iso), in the
// local time zone.
const TimeFormat = "2006-01-02 15:04"

// WriteTable writes entries as ls -l does: permissions, uid, gid, size,
// mtime, name ("-> target" for a symlink). withPath names each entry by
// its path instead of its name (a recursive listing).
func WriteTable(w io.Writer, items []catalogv1alpha1.SnapshotFile, withPath bool) error {
	rows := make([][6]string, 0, len(items))
	var width [6]int
	for _, it := range items {
		perm := it.Permissions
		if perm == "" {
			perm = permissions(it.Type, it.Mode)
		}
		mtime := "-"
		if it.Mtime != nil {
			mtime = it.Mtime.Local().Format(TimeFormat)
		}
		name := it.Name
		if withPath {
			name = it.Path
		}
		if it.Type == catalogv1alpha1.FileTypeDir && withPath {
			name += "/"
		}
		if it.Type == catalogv1alpha1.FileTypeSymlink && it.LinkTarget != "" {
			name += " -> " + it.LinkTarget
		}
		r := [6]string{perm, strconv.FormatInt(it.UID, 10), strconv.FormatInt(it.GID, 10), strconv.FormatInt(it.Size, 10), mtime, name}
		for i, s := range r {
			width[i] = max(width[i], len(s))
		}
		rows = append(rows, r)
	}
	for _, r := range rows {
		// Text columns to the left, numbers to the right, as ls does.
		if _, err := fmt.Fprintf(w, "%-*s %*s %*s %*s %s %s\n", width[0], r[0], width[1], r[1], width[2], r[2], width[3], r[3], r[4], r[5]); err != nil {
			return err
		}
	}
	return nil
}

// permissions is ls -l's mode string of an entry whose server gave none.
func permissions(typ, mode string) string {
	m, _ := strconv.ParseUint(mode, 8, 32)
	b := []byte("?rwxrwxrwx")
	switch typ {
	case catalogv1alpha1.FileTypeFile:
		b[0] = '-'
	case catalogv1alpha1.FileTypeDir:
		b[0] = 'd'
	case catalogv1alpha1.FileTypeSymlink:
		b[0] = 'l'
	}
	for i := 0; i < 9; i++ {
		if m&(1<<(8-i)) == 0 {
			b[i+1] = '-'
		}
	}
	set := func(bit uint64, i int, on, off byte) {
		if m&bit != 0 {
			if b[i] == '-' {
				b[i] = off
			} else {
				b[i] = on
			}
		}
	}
	set(0o4000, 3, 's', 'S')
	set(0o2000, 6, 's', 'S')
	set(0o1000, 9, 't', 'T')
	return string(b)
}

func newCatCommand(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "cat SNAPSHOT PATH",
		Short: "Print a file of a Snapshot",
		Long: `Print a file of a Snapshot to stdout (snapshots/download), streamed as it
comes. PATH is relative to the backed-up volume's root.`,
		Example: `  kubectl kubestash cat s3-repo-pvc-backup-daily-1733580000 /config/app.yaml -n demo`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.clients()
			if err != nil {
				return err
			}
			body, kind, err := openDownload(cmd.Context(), c, args[0], args[1])
			if err != nil {
				return err
			}
			defer body.Close()
			if kind == contentTar {
				return fmt.Errorf("%s is a directory; use download to get it", cleanPath(args[1]))
			}
			_, err = io.Copy(o.Out, body)
			return err
		},
	}
}

const (
	contentTar  = "application/x-tar"
	contentFile = "application/octet-stream"
)

// openDownload starts a download and returns its body and Content-Type;
// a failure is the API's Status as an error (Error from server ...).
func openDownload(ctx context.Context, c *Clients, snap, p string) (io.ReadCloser, string, error) {
	u := c.Client.CatalogV1alpha1().RESTClient().Get().Namespace(c.Namespace).Resource("snapshots").Name(snap).
		SubResource(catalogv1alpha1.SubresourceDownload).Param("path", cleanPath(p)).URL()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", err
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return nil, "", err
	}
	if res.StatusCode != http.StatusOK {
		defer res.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		var st metav1.Status
		if json.Unmarshal(body, &st) == nil && st.Kind == "Status" {
			return nil, "", &apierrors.StatusError{ErrStatus: st}
		}
		return nil, "", apierrors.NewGenericServerResponse(res.StatusCode, http.MethodGet,
			catalogv1alpha1.Resource("snapshots"), snap, strings.TrimSpace(string(body)), 0, true)
	}
	ct := res.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return res.Body, strings.TrimSpace(ct), nil
}

// humanDuration is d rounded for progress lines.
func humanDuration(d time.Duration) string {
	return d.Round(time.Second).String()
}
