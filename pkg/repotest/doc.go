// Package repotest holds tests of the repository as a whole rather than of
// one package: conventions every package of the module keeps, checked by
// walking the module's source tree (pkgdoc_test.go: every package has a
// package doc comment). The package has no code outside its tests.
package repotest
