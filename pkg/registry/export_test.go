package registry

import (
	"context"

	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/layout"
)

// PublicError is publicError, for the tests.
func PublicError(ctx context.Context, resource string, err error) error {
	return publicError(ctx, resource, err)
}

// KeyFits checks an object of kind k named name in the repository at
// repoPath of backend b, as the locator does.
func KeyFits(b backend.Backend, k layout.Kind, ref Reference, name, repoPath string) error {
	key, err := layout.Key(k, repoPath, name)
	if err != nil {
		return err
	}
	if fe := keyFits(k, ref, name, key, keyPrefixLen(b)); fe != nil {
		return fe
	}
	return nil
}
