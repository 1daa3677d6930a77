// Package archtest holds the tests that keep the tree's structure what
// docs/architecture.md says it is: which package may import which (the
// package map and the rules behind it), and where bus subjects are
// spelled. It has no code of its own.
package archtest
