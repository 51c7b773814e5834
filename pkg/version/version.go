// Package version holds the project's version. The images built by
// hack/images.sh are tagged with it, and the controller's default agent image
// names it. Release builds set it with
// -ldflags "-X kubestash.dev/kubestash/pkg/version.Version=$(cat VERSION)";
// the default below is kept equal to the VERSION file by a unit test, so a
// plain `go build` names the same images.
package version

// Version is the release, e.g. "v0.1.0".
var Version = "v0.1.0"
