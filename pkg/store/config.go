package store

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Defaults of Config; DefaultConfig returns them.
const (
	DefaultPollInterval     = 15 * time.Second
	DefaultEventLogSize     = 10000
	DefaultReadConcurrency  = 16
	DefaultBookmarkInterval = time.Minute
	// DefaultMaxObjectSize bounds a catalog file (1 MiB): a Snapshot with
	// many components is a few KiB.
	DefaultMaxObjectSize int64 = 1 << 20
	// DefaultEventLogBytes bounds the file bytes of the objects the event
	// log holds (16 MiB), besides its count.
	DefaultEventLogBytes int64 = 16 << 20
)

// Config is what a Store needs. Codec, NewFunc, NewListFunc and
// ResourcePrefix are what the generic registry hands to a storage decorator;
// the rest says where the objects live.
type Config struct {
	// Codec encodes and decodes the files: YAML of the full object. The store
	// clears metadata.resourceVersion before encoding, so files never carry it.
	Codec runtime.Codec
	// NewFunc and NewListFunc make empty objects and lists of the resource.
	NewFunc     func() runtime.Object
	NewListFunc func() runtime.Object
	// ResourcePrefix is the registry's key prefix of the resource, such as
	// "/snapshots"; every key the store serves starts with it.
	ResourcePrefix string

	Backends Backends
	Locator  Locator
	Scanner  Scanner
	Admitter Admitter
	// DeleteHook, if set, is called before every delete of a file.
	DeleteHook DeleteHook
	// Prepare, if set, runs before a new object's file is first written.
	Prepare PrepareFunc

	// PollInterval is how often every storage is scanned for changes made by
	// other writers. 0 disables polling (Poll can still be called);
	// DefaultConfig sets DefaultPollInterval.
	PollInterval time.Duration
	// EventLogSize bounds the in-memory event log that serves watches and
	// reads at an exact resourceVersion; 0 means DefaultEventLogSize.
	EventLogSize int
	// MaxObjectSize bounds a catalog file in bytes. Files over it are
	// skipped (told by the listing's size, and never read beyond the limit
	// + 1 byte), and creates and updates whose file would be larger are
	// refused with 413. 0 means DefaultMaxObjectSize; negative means no
	// limit.
	MaxObjectSize int64
	// EventLogBytes bounds the file bytes of the objects held by the event
	// log; the oldest events go first when either bound is passed. 0 means
	// DefaultEventLogBytes; negative means no bound.
	EventLogBytes int64
	// ReadConcurrency bounds the backend reads in flight while building or
	// polling; 0 means DefaultReadConcurrency.
	ReadConcurrency int
	// BookmarkInterval is how often a watcher that allows bookmarks gets one;
	// 0 means DefaultBookmarkInterval. A watcher whose context has a deadline
	// also gets one two seconds before it, so it can resume without a relist.
	BookmarkInterval time.Duration

	// Resource names the resource in logs and metric labels; empty means the
	// last element of ResourcePrefix.
	Resource string
	// Logger is used for the store's logs; the zero value means
	// klog.Background() named "catalog-store".
	Logger klog.Logger
	// Clock gives the time that resourceVersions follow; nil is the real clock.
	Clock clock.PassiveClock
}

// DefaultConfig returns a Config with the defaults filled in; the caller adds
// the codec, the object constructors, the prefix and the locating parts.
func DefaultConfig() Config {
	return Config{
		PollInterval:     DefaultPollInterval,
		EventLogSize:     DefaultEventLogSize,
		ReadConcurrency:  DefaultReadConcurrency,
		BookmarkInterval: DefaultBookmarkInterval,
	}
}

// complete checks the Config and fills in the defaults of the zero values.
func (c *Config) complete() error {
	var missing []string
	for name, isNil := range map[string]bool{
		"Codec": c.Codec == nil, "NewFunc": c.NewFunc == nil, "NewListFunc": c.NewListFunc == nil,
		"Backends": c.Backends == nil, "Locator": c.Locator == nil, "Scanner": c.Scanner == nil, "Admitter": c.Admitter == nil,
	} {
		if isNil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("catalog store config: missing %s", strings.Join(sortedStrings(missing), ", "))
	}
	// The prefix always ends in "/" so that "/pods" can't match "/podsx/...":
	// a recursive key "/pods" becomes "/pods/", an object key needs more.
	p := c.ResourcePrefix
	if !strings.HasPrefix(p, "/") || strings.Trim(p, "/") == "" {
		return fmt.Errorf("catalog store config: resource prefix %q must start with / and name a resource", p)
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	c.ResourcePrefix = p
	if c.PollInterval < 0 {
		return errors.New("catalog store config: negative poll interval")
	}
	if c.EventLogSize <= 0 {
		c.EventLogSize = DefaultEventLogSize
	}
	if c.MaxObjectSize == 0 {
		c.MaxObjectSize = DefaultMaxObjectSize
	}
	if c.EventLogBytes == 0 {
		c.EventLogBytes = DefaultEventLogBytes
	}
	if c.ReadConcurrency <= 0 {
		c.ReadConcurrency = DefaultReadConcurrency
	}
	if c.BookmarkInterval <= 0 {
		c.BookmarkInterval = DefaultBookmarkInterval
	}
	if c.Resource == "" {
		parts := strings.Split(strings.Trim(p, "/"), "/")
		c.Resource = parts[len(parts)-1]
	}
	if c.Logger.GetSink() == nil {
		c.Logger = klog.Background().WithName("catalog-store")
	}
	c.Logger = c.Logger.WithValues("resource", c.Resource)
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	return nil
}
