// Command bucketls lists the objects under a prefix of an S3 bucket, one
// key a line, relative to the prefix: hack/demo.sh uses it to show the
// catalog files in the dev environment's MinIO (there is no S3 CLI here).
//
//	MINIO_ENDPOINT=http://host:port MINIO_BUCKET=b AWS_ACCESS_KEY_ID=... \
//	AWS_SECRET_ACCESS_KEY=... go run ./hack/bucketls [prefix]
//
// source .dev/minio.env sets those variables for the dev environment.
package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "bucketls: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) > 2 {
		return fmt.Errorf("usage: bucketls [prefix]")
	}
	env := map[string]string{}
	for _, k := range []string{"MINIO_ENDPOINT", "MINIO_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if env[k] = os.Getenv(k); env[k] == "" {
			return fmt.Errorf("%s is not set (source .dev/minio.env)", k)
		}
	}
	u, err := url.Parse(env["MINIO_ENDPOINT"])
	if err != nil || u.Host == "" {
		return fmt.Errorf("MINIO_ENDPOINT %q is not a URL", env["MINIO_ENDPOINT"])
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], ""),
		Secure: u.Scheme == "https",
	})
	if err != nil {
		return err
	}
	prefix := ""
	if len(os.Args) == 2 {
		prefix = strings.Trim(os.Args[1], "/")
		if prefix != "" {
			prefix += "/"
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for o := range c.ListObjects(ctx, env["MINIO_BUCKET"], minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return o.Err
		}
		fmt.Println(strings.TrimPrefix(o.Key, prefix))
	}
	return nil
}
