// Package names says which audio codecs this build of rtpkit transcodes,
// without linking the codec libraries (ng-ctl decides from it whether a
// transcoding request can be served; rtp-fwd does the work, pkg/codec).
package names

import "strings"

// Supported reports whether this build decodes and encodes the codec
// named (case-insensitive encoding name).
func Supported(name string) bool {
	n := strings.ToLower(name)
	for _, c := range Codecs {
		if c == n {
			return true
		}
	}
	return false
}
