// Command rtpctl is rtpkit's command line for operators and scripts, and
// `rtpctl up` runs a whole node in the foreground.
package main

import (
	"os"

	"github.com/rtpkit/rtpkit/pkg/rtpctl"
)

func main() {
	os.Exit(rtpctl.Main(os.Args[1:], os.Stdout, os.Stderr))
}
