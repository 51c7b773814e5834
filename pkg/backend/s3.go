package backend

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config is what an S3 backend needs: the BackupStorage's spec.storage.s3
// and the keys of its Secret.
type S3Config struct {
	// Endpoint with or without scheme; without one, https is used.
	Endpoint string
	Bucket   string
	Prefix   string
	Region   string
	// InsecureTLS skips verification of the server's certificate.
	InsecureTLS bool
	// CACertPEM is the Secret's CA_CERT_DATA: extra roots to trust.
	CACertPEM []byte
	// AccessKeyID and SecretAccessKey come from the Secret
	// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). Never logged.
	AccessKeyID     string
	SecretAccessKey string
	// Timeout bounds each request; default 30s. Retries are few so that a
	// backend that is down fails a write quickly instead of blocking it.
	Timeout    time.Duration
	MaxRetries int
}

// S3 is a Backend over an S3-compatible bucket (AWS, MinIO, ...), with
// path-style addressing.
type S3 struct {
	client *minio.Client
	bucket string
	prefix string // no leading or trailing "/"
	region string
	desc   string
}

// NewS3 returns a Backend for the bucket. It does not contact the server.
func NewS3(c S3Config) (*S3, error) {
	if c.Bucket == "" {
		return nil, errors.New("s3: bucket is required")
	}
	ep := c.Endpoint
	if ep == "" {
		ep = "https://s3.amazonaws.com"
	}
	if !strings.Contains(ep, "://") {
		ep = "https://" + ep
	}
	u, err := url.Parse(strings.TrimRight(ep, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("s3: invalid endpoint %q", c.Endpoint)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("s3: endpoint %q must not have a path; put it in prefix", c.Endpoint)
	}
	secure := u.Scheme == "https"
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureTLS} //nolint:gosec // the user's explicit insecureTLS
	if len(c.CACertPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(c.CACertPEM) {
			return nil, errors.New("s3: CA_CERT_DATA holds no PEM certificate")
		}
		tlsCfg.RootCAs = pool
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
		TLSHandshakeTimeout:   10 * time.Second,
	}
	retries := c.MaxRetries
	if retries == 0 {
		retries = 2
	}
	var creds *credentials.Credentials
	if c.AccessKeyID != "" {
		creds = credentials.NewStaticV4(c.AccessKeyID, c.SecretAccessKey, "")
	} else {
		// Credential-less mode (IRSA, pod identity): the usual chain.
		creds = credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.IAM{}})
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Region:       c.Region,
		Transport:    tr,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   retries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	prefix := strings.Trim(c.Prefix, "/")
	desc := fmt.Sprintf("s3:%s://%s/%s", u.Scheme, u.Host, c.Bucket)
	if prefix != "" {
		desc += "/" + prefix
	}
	return &S3{client: client, bucket: c.Bucket, prefix: prefix, region: c.Region, desc: desc}, nil
}

func (s *S3) String() string { return s.desc }

func (s *S3) object(k string) string {
	if s.prefix == "" {
		return k
	}
	return s.prefix + "/" + k
}

func (s *S3) key(object string) string {
	if s.prefix == "" {
		return object
	}
	return strings.TrimPrefix(object, s.prefix+"/")
}

func (s *S3) Get(ctx context.Context, key string) ([]byte, Object, error) {
	return s.GetLimit(ctx, key, -1)
}

// GetLimit implements LimitedGetter: the object's size comes with the
// response headers, so one over max is refused before its body is read,
// and the body is read through a limit in any case.
func (s *S3) GetLimit(ctx context.Context, key string, max int64) ([]byte, Object, error) {
	k, err := CleanKey(key)
	if err != nil {
		return nil, Object{}, err
	}
	r, err := s.client.GetObject(ctx, s.bucket, s.object(k), minio.GetObjectOptions{})
	if err != nil {
		return nil, Object{}, s.wrap("get", k, err)
	}
	defer r.Close()
	// Stat first: it carries the ETag of exactly the version we then read.
	info, err := r.Stat()
	if err != nil {
		return nil, Object{}, s.wrap("get", k, err)
	}
	obj := Object{Key: k, ETag: info.ETag, Size: info.Size, LastModified: info.LastModified}
	var body io.Reader = r
	if max >= 0 {
		if info.Size > max {
			return nil, obj, tooLarge("get", k, info.Size, max)
		}
		body = io.LimitReader(r, max+1)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, Object{}, s.wrap("get", k, err)
	}
	if max >= 0 && int64(len(b)) > max {
		return nil, obj, tooLarge("get", k, int64(len(b)), max)
	}
	return b, obj, nil
}

func (s *S3) Stat(ctx context.Context, key string) (Object, error) {
	k, err := CleanKey(key)
	if err != nil {
		return Object{}, err
	}
	info, err := s.client.StatObject(ctx, s.bucket, s.object(k), minio.StatObjectOptions{})
	if err != nil {
		return Object{}, s.wrap("stat", k, err)
	}
	return Object{Key: k, ETag: info.ETag, Size: info.Size, LastModified: info.LastModified}, nil
}

func (s *S3) Put(ctx context.Context, key string, data []byte, o PutOptions) (Object, error) {
	k, err := CleanKey(key)
	if err != nil {
		return Object{}, err
	}
	if err := checkPutOptions(k, o); err != nil {
		return Object{}, err
	}
	opts := minio.PutObjectOptions{ContentType: o.ContentType, SendContentMd5: true}
	switch {
	case o.IfAbsent:
		opts.SetMatchETagExcept("*")
	case o.IfMatch != "":
		opts.SetMatchETag(o.IfMatch)
	}
	info, err := s.client.PutObject(ctx, s.bucket, s.object(k), bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		err = s.wrap("put", k, err)
		if o.IfMatch != "" && errors.Is(err, ErrNotFound) {
			// If-Match on a missing key: the object changed (was deleted).
			err.(*Error).Kind = ErrPreconditionFailed
		}
		return Object{}, err
	}
	return Object{Key: k, ETag: info.ETag, Size: info.Size, LastModified: info.LastModified}, nil
}

// Delete removes the object. S3 deletes of a missing key succeed and
// minio-go sends no If-Match on DELETE, so the check is a Stat just before:
// a writer that replaces the object in between loses to this delete. The
// catalog store serialises its own writes per key, which closes that window
// for writers in one process.
func (s *S3) Delete(ctx context.Context, key string, o DeleteOptions) error {
	k, err := CleanKey(key)
	if err != nil {
		return err
	}
	cur, err := s.Stat(ctx, k)
	if err != nil {
		var be *Error
		if errors.As(err, &be) {
			be.Op = "delete"
		}
		return err
	}
	if o.IfMatch != "" && o.IfMatch != cur.ETag {
		return &Error{Op: "delete", Key: k, Kind: ErrPreconditionFailed, Err: fmt.Errorf("etag is %s, not %s", cur.ETag, o.IfMatch)}
	}
	if err := s.client.RemoveObject(ctx, s.bucket, s.object(k), minio.RemoveObjectOptions{}); err != nil {
		return s.wrap("delete", k, err)
	}
	return nil
}

func (s *S3) List(ctx context.Context, prefix string, o ListOptions) (ListResult, error) {
	pre, err := cleanPrefix(prefix)
	if err != nil {
		return ListResult{}, err
	}
	full := pre
	if s.prefix != "" {
		full = s.prefix + "/" + pre
	}
	var res ListResult
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: full, Recursive: o.Delimiter == ""}) {
		if obj.Err != nil {
			return ListResult{}, s.wrap("list", pre, obj.Err)
		}
		k := s.key(obj.Key)
		if strings.HasSuffix(obj.Key, "/") {
			if o.Delimiter == "/" {
				res.CommonPrefixes = append(res.CommonPrefixes, k)
			}
			// A zero-byte "directory marker" object: not a file.
			continue
		}
		res.Objects = append(res.Objects, Object{Key: k, ETag: obj.ETag, Size: obj.Size, LastModified: obj.LastModified})
	}
	return res, nil
}

var _ BucketMaker = (*S3)(nil)

// EnsureBucket implements BucketMaker. A bucket whose existence cannot be
// checked (HeadBucket needs s3:ListBucket, which some policies withhold
// while allowing the prefix's objects) is taken to exist: the first read
// or write then tells. Creating one that another writer created meanwhile
// is success.
func (s *S3) EnsureBucket(ctx context.Context) (bool, error) {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		err = s.wrap("stat bucket", s.bucket, err)
		if errors.Is(err, ErrForbidden) {
			return false, nil
		}
		return false, err
	}
	if ok {
		return false, nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.region})
	if err == nil {
		return true, nil
	}
	switch code := minio.ToErrorResponse(err).Code; code {
	case "BucketAlreadyOwnedByYou":
		return false, nil
	case "BucketAlreadyExists":
		// Taken by someone else since: not ours to write into, and
		// reads will say so; report it as missing for us.
		return false, &Error{Op: "create bucket", Key: s.bucket, Kind: ErrNoSuchBucket, Err: fmt.Errorf("the name is taken by another account: %w", err)}
	}
	why := s.wrap("create bucket", s.bucket, err)
	var e *Error
	if errors.As(why, &e) && e.Kind != nil {
		// Keep the class (access denied, unavailable) in the message.
		err = fmt.Errorf("%v: %w", e.Kind, err)
	}
	return false, &Error{Op: "create bucket", Key: s.bucket, Kind: ErrNoSuchBucket, Err: err}
}

// wrap classifies a minio-go error.
func (s *S3) wrap(op, k string, err error) error {
	var kind error
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == minio.NoSuchKey || resp.StatusCode == http.StatusNotFound && resp.Code != minio.NoSuchBucket:
		kind = ErrNotFound
	case resp.Code == "PreconditionFailed" || resp.StatusCode == http.StatusPreconditionFailed:
		kind = ErrPreconditionFailed
	case resp.Code == "AccessDenied" || resp.Code == "InvalidAccessKeyId" || resp.Code == "SignatureDoesNotMatch" ||
		resp.StatusCode == http.StatusForbidden:
		kind = ErrForbidden
	case resp.Code == minio.NoSuchBucket:
		kind = ErrNoSuchBucket
	case resp.StatusCode >= 500:
		kind = ErrUnavailable
	default:
		var ne net.Error
		var ue *url.Error
		if errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) {
			kind = ErrUnavailable
		}
	}
	return &Error{Op: op, Key: k, Kind: kind, Err: err}
}
