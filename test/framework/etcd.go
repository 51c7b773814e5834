package framework

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
)

// Etcd is a single-member etcd on loopback.
type Etcd struct {
	*Process
	ClientURL string
}

func startEtcd(ctx context.Context, env *envDirs, bin string, detach bool) (*Etcd, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	p := &Process{
		Name:    "etcd",
		Bin:     filepath.Join(bin, "etcd"),
		LogPath: filepath.Join(env.logs, "etcd.log"),
		Detach:  detach,
		Args: []string{
			"--name=default",
			"--data-dir=" + filepath.Join(env.data, "etcd"),
			"--listen-client-urls=" + client,
			"--advertise-client-urls=" + client,
			"--listen-peer-urls=" + peer,
			"--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=default=" + peer,
			"--log-level=warn",
			// Test data is thrown away; skipping fsync makes the control
			// plane several times faster on shared disks.
			"--unsafe-no-fsync",
			"--quota-backend-bytes=4294967296",
		},
	}
	if err := p.Start(); err != nil {
		return nil, err
	}
	e := &Etcd{Process: p, ClientURL: client}
	err = p.waitReady(ctx, func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, client+"/health")
	})
	if err != nil {
		_ = p.Stop(stopGrace)
		return nil, err
	}
	return e, nil
}

func httpOK(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
