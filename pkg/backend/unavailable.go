package backend

import "context"

// Unavailable returns a Backend that refuses every call with ErrUnavailable
// and cause. A storage whose credentials are gone is served by it: the
// catalog store keeps the objects it has read, as in an outage, and
// refuses writes with the cause, until working credentials are back.
func Unavailable(name string, cause error) Backend {
	return &unavailable{name: name, cause: cause}
}

type unavailable struct {
	name  string
	cause error
}

func (u *unavailable) err(op, key string) error {
	return &Error{Op: op, Key: key, Kind: ErrUnavailable, Err: u.cause}
}

func (u *unavailable) Get(_ context.Context, key string) ([]byte, Object, error) {
	return nil, Object{}, u.err("get", key)
}

func (u *unavailable) Stat(_ context.Context, key string) (Object, error) {
	return Object{}, u.err("stat", key)
}

func (u *unavailable) Put(_ context.Context, key string, _ []byte, _ PutOptions) (Object, error) {
	return Object{}, u.err("put", key)
}

func (u *unavailable) Delete(_ context.Context, key string, _ DeleteOptions) error {
	return u.err("delete", key)
}

func (u *unavailable) List(_ context.Context, prefix string, _ ListOptions) (ListResult, error) {
	return ListResult{}, u.err("list", prefix)
}

func (u *unavailable) String() string { return u.name + UnavailableSuffix }

// UnavailableSuffix ends the String of an Unavailable backend.
const UnavailableSuffix = " (unavailable)"
