//go:build !cgo || notranscode

package names

// Codecs are the encoding names (lower case) this build transcodes: a
// build without the codec libraries has G.711 only.
var Codecs = []string{"pcmu", "pcma"}

// Libraries is true when the build links the codec libraries.
const Libraries = false
