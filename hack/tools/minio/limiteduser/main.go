// Command limiteduser makes a user of the test MinIO whose policy lets it
// read and write objects in every bucket but not create buckets: what a
// cloud administrator's narrow credentials look like. The end-to-end
// tests use it to prove a BackupStorage on a missing bucket says it could
// not create it. It lives in this module because madmin-go, MinIO's admin
// client, comes with the MinIO pin and is not a dependency of the project.
//
// Usage: MINIO_ROOT_USER=... MINIO_ROOT_PASSWORD=... limiteduser HOST:PORT USER PASSWORD
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/minio/madmin-go/v3"
)

const policyName = "kubestash-no-create-bucket"

// policy allows the object calls a BackupStorage needs, and refuses
// s3:CreateBucket explicitly.
const policy = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:GetBucketLocation"], "Resource": ["arn:aws:s3:::*"]},
    {"Effect": "Deny", "Action": ["s3:CreateBucket"], "Resource": ["arn:aws:s3:::*"]}
  ]
}`

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: limiteduser HOST:PORT USER PASSWORD (root credentials in MINIO_ROOT_USER, MINIO_ROOT_PASSWORD)")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, "limiteduser:", err)
		os.Exit(1)
	}
}

func run(host, user, password string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm, err := madmin.New(host, os.Getenv("MINIO_ROOT_USER"), os.Getenv("MINIO_ROOT_PASSWORD"), false)
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	if err := adm.AddCannedPolicy(ctx, policyName, []byte(policy)); err != nil {
		return fmt.Errorf("add policy %s: %w", policyName, err)
	}
	if err := adm.AddUser(ctx, user, password); err != nil {
		return fmt.Errorf("add user %s: %w", user, err)
	}
	if err := adm.SetPolicy(ctx, policyName, user, false); err != nil {
		return fmt.Errorf("attach policy %s to %s: %w", policyName, user, err)
	}
	return nil
}
