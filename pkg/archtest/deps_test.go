package archtest

import (
	"bufio"
	"bytes"
	"encoding/json"

	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/rtpkit/rtpkit/"

// pkgInfo is what `go list` says of one package of the module (tests not
// included: the rules are about what ships in the binaries).
type pkgInfo struct {
	ImportPath string
	Dir        string
	Imports    []string // direct
	Deps       []string // transitive
	GoFiles    []string
}

// rel is an import path without the module prefix ("pkg/bus").
func rel(p string) string { return strings.TrimPrefix(p, module) }

// isOurs reports whether p is a package of this module.
func isOurs(p string) bool { return strings.HasPrefix(p, module) }

// under reports whether package p (relative) is dir or below it.
func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// listPackages runs `go list` over the module once.
func listPackages(t *testing.T) map[string]pkgInfo {
	t.Helper()
	root := moduleRoot(t)
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	pkgs := map[string]pkgInfo{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkgInfo
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs[rel(p.ImportPath)] = p
	}
	return pkgs
}

// moduleRoot is the directory of go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// daemons are the packages of the node's daemons; each owns its
// subpackages too. None may import another's.
var daemons = []string{"pkg/portd", "pkg/rtpfwd", "pkg/ngctl", "pkg/redissync"}

// daemonOf is the daemon package p belongs to, or "".
func daemonOf(p string) string {
	for _, d := range daemons {
		if under(p, d) {
			return d
		}
	}
	return ""
}

// rule is one structural rule over the module's packages; check returns
// one message per violation.
type rule struct {
	name  string
	check func(pkgs map[string]pkgInfo) []string
}

// rules are the fixed rules of the tree (docs/architecture.md, "Package
// map").
var rules = []rule{
	{"the packet path (pkg/fwd) links nothing of NATS, Redis or the bus", func(pkgs map[string]pkgInfo) []string {
		var bad []string
		for _, d := range pkgs["pkg/fwd"].Deps {
			if strings.HasPrefix(d, "github.com/nats-io/") || strings.HasPrefix(d, "github.com/redis/") ||
				d == module+"pkg/bus" || d == module+"pkg/nodestate" || strings.HasPrefix(d, module+"pkg/api") {
				bad = append(bad, "pkg/fwd depends on "+d)
			}
		}
		return bad
	}},
	{"only portd imports the socket-binding package (pkg/mediasock)", func(pkgs map[string]pkgInfo) []string {
		var bad []string
		for name, p := range pkgs {
			for _, imp := range p.Imports {
				if imp == module+"pkg/mediasock" && !under(name, "pkg/portd") {
					bad = append(bad, name+" imports pkg/mediasock")
				}
			}
		}
		return bad
	}},
	{"no daemon package links another daemon's package", func(pkgs map[string]pkgInfo) []string {
		var bad []string
		for name, p := range pkgs {
			own := daemonOf(name)
			if own == "" {
				continue
			}
			for _, d := range p.Deps {
				if other := daemonOf(rel(d)); isOurs(d) && other != "" && other != own {
					bad = append(bad, name+" depends on "+rel(d))
				}
			}
		}
		return bad
	}},
	{"contract packages (pkg/api/...) link only the standard library and each other", func(pkgs map[string]pkgInfo) []string {
		var bad []string
		for name, p := range pkgs {
			if !under(name, "pkg/api") {
				continue
			}
			for _, d := range p.Deps {
				if isOurs(d) && !under(rel(d), "pkg/api") || !isOurs(d) && !isStd(d) {
					bad = append(bad, name+" depends on "+d)
				}
			}
		}
		return bad
	}},
	{"ng-ctl and redis-sync link neither cilium/ebpf nor netlink", func(pkgs map[string]pkgInfo) []string {
		var bad []string
		for _, name := range []string{"cmd/ng-ctl", "cmd/redis-sync", "pkg/ngctl", "pkg/redissync"} {
			for _, d := range pkgs[name].Deps {
				if strings.HasPrefix(d, "github.com/cilium/ebpf") || strings.HasPrefix(d, "github.com/vishvananda/") {
					bad = append(bad, name+" depends on "+d)
				}
			}
		}
		return bad
	}},
}

// isStd reports whether an import path is the standard library's (no dot
// in its first element).
func isStd(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".")
}

func TestDependencyRules(t *testing.T) {
	pkgs := listPackages(t)
	for _, need := range append([]string{"pkg/fwd", "pkg/mediasock", "pkg/api", "cmd/ng-ctl", "cmd/redis-sync"}, daemons...) {
		if _, ok := pkgs[need]; !ok {
			t.Fatalf("package %s is gone: update the rules here and the package map", need)
		}
	}
	for _, r := range rules {
		bad := r.check(pkgs)
		sort.Strings(bad)
		for _, b := range bad {
			t.Errorf("rule %q broken: %s", r.name, b)
		}
	}
}

// mapRow is one line of the package map: a package and the module
// packages it may import (patterns: a package, or "dir/..." for a tree).
type mapRow struct {
	pkg    string
	mayUse []string
	line   int
}

// readPackageMap parses the package map table of docs/architecture.md:
// rows "| `pkg/x` | what it owns | `pkg/a`, `pkg/b/...` |" between the
// "## Package map" heading and the next heading; "—" in the third column
// means no package of the module.
func readPackageMap(t *testing.T) map[string]mapRow {
	t.Helper()
	path := filepath.Join(moduleRoot(t), "docs", "architecture.md")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]mapRow{}
	in := false
	sc := bufio.NewScanner(f)
	tick := regexp.MustCompile("`([^`]+)`")
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = strings.TrimSpace(line) == "## Package map"
			continue
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cols := strings.Split(strings.Trim(line, "|"), "|")
		if len(cols) != 3 {
			t.Fatalf("%s:%d: a package map row has three columns: %q", path, n, line)
		}
		m := tick.FindStringSubmatch(cols[0])
		if m == nil {
			t.Fatalf("%s:%d: no package in %q", path, n, cols[0])
		}
		r := mapRow{pkg: m[1], line: n}
		for _, u := range tick.FindAllStringSubmatch(cols[2], -1) {
			r.mayUse = append(r.mayUse, u[1])
		}
		if _, dup := rows[r.pkg]; dup {
			t.Fatalf("%s:%d: %s listed twice", path, n, r.pkg)
		}
		rows[r.pkg] = r
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no package map (a \"## Package map\" section with a table)", path)
	}
	return rows
}

// allowed reports whether import imp (relative) matches one of a row's
// patterns.
func (r mapRow) allowed(imp string) bool {
	for _, u := range r.mayUse {
		if dir, ok := strings.CutSuffix(u, "/..."); ok && under(imp, dir) || u == imp {
			return true
		}
	}
	return false
}

// TestPackageMap: docs/architecture.md's package map lists every package
// of the tree and no other, and every import of the module's own packages
// is one its row allows.
func TestPackageMap(t *testing.T) {
	pkgs := listPackages(t)
	rows := readPackageMap(t)
	var names []string
	for name := range pkgs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == "pkg/archtest" {
			continue // tests only
		}
		r, ok := rows[name]
		if !ok {
			t.Errorf("package %s is not in docs/architecture.md's package map", name)
			continue
		}
		for _, imp := range pkgs[name].Imports {
			if isOurs(imp) && !r.allowed(rel(imp)) {
				t.Errorf("%s imports %s, which its package map row (docs/architecture.md:%d) does not allow", name, rel(imp), r.line)
			}
		}
	}
	for name, r := range rows {
		if _, ok := pkgs[name]; !ok {
			t.Errorf("docs/architecture.md:%d lists %s, which is not in the tree", r.line, name)
		}
	}
}

// TestNoSubjectLiterals: bus subjects are built only by the contract
// packages (pkg/api/...); no other non-test file spells one.
func TestNoSubjectLiterals(t *testing.T) {
	pkgs := listPackages(t)
	fset := token.NewFileSet()
	for name, p := range pkgs {
		if under(name, "pkg/api") {
			continue
		}
		for _, file := range p.GoFiles {
			path := filepath.Join(p.Dir, file)
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				if s, err := strconv.Unquote(lit.Value); err == nil && strings.Contains(s, "rtpkit.v1") {
					t.Errorf("%s: subject literal %s: build it with pkg/api", fset.Position(lit.Pos()), lit.Value)
				}
				return true
			})
		}
	}
}
