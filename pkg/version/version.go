// Package version holds the build's version string, stamped by the Makefile.
package version

// Version is the rtpkit release or git description, set at link time with
// -ldflags "-X github.com/rtpkit/rtpkit/pkg/version.Version=...".
var Version = "dev"
