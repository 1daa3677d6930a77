// Package archtest holds the tests of the tree as a whole rather than of
// one package: that its structure is what docs/architecture.md says it is
// (deps_test.go: which package may import which, the package map and the
// rules behind it, where bus subjects are spelled) and the conventions
// every package keeps (pkgdoc_test.go: a package doc comment). It has no
// code outside its tests.
package archtest
