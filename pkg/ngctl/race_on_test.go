//go:build race

package ngctl_test

// raceBuild is true in a -race build, whose in-process (embedded) bus runs
// many times slower.
const raceBuild = true
