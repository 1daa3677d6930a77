//go:build cgo && !notranscode

package names

// Codecs are the encoding names (lower case) this build transcodes.
var Codecs = []string{"pcmu", "pcma", "g722", "opus", "g729", "gsm"}

// Libraries is true when the build links the codec libraries.
const Libraries = true
