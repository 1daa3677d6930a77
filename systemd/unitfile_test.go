package systemd

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// unitFile is a parsed unit file: section → key → values in order. An
// empty assignment resets the key, as systemd does for list settings.
type unitFile struct {
	name     string // unit name, with the instance for a template ("rtpkit-rtp-fwd@0.service")
	instance string
	sections map[string]map[string][]string
}

// loadUnit parses the unit file at path as the unit name (an instance name
// for a template file).
func loadUnit(t *testing.T, path, name string) *unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := &unitFile{name: name, sections: map[string]map[string][]string{}}
	if _, inst, ok := strings.Cut(strings.TrimSuffix(name, filepath.Ext(name)), "@"); ok {
		u.instance = inst
	}
	sc := bufio.NewScanner(f)
	section, pending := "", ""
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if pending == "" && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if strings.HasSuffix(line, "\\") { // continuation
			pending += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, pending = pending+line, ""
		if line[0] == '[' && line[len(line)-1] == ']' {
			section = line[1 : len(line)-1]
			if u.sections[section] == nil {
				u.sections[section] = map[string][]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Fatalf("%s:%d: not a setting: %q", path, n, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if v == "" {
			u.sections[section][k] = []string{}
		} else {
			u.sections[section][k] = append(u.sections[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// get returns every value of key in section.
func (u *unitFile) get(section, key string) []string { return u.sections[section][key] }

// last returns the value of a single-valued key ("" if unset).
func (u *unitFile) last(section, key string) string {
	v := u.get(section, key)
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// has reports whether key is set in section.
func (u *unitFile) has(section, key string) bool {
	_, ok := u.sections[section][key]
	return ok
}

// words returns the space-separated words of every value of key.
func (u *unitFile) words(section, key string) []string {
	var out []string
	for _, v := range u.get(section, key) {
		out = append(out, strings.Fields(v)...)
	}
	return out
}

// specifiers expands the % specifiers a unit can use; roots maps %t (the
// runtime directory root) and %S (the state root).
func (u *unitFile) specifiers(s string, roots map[byte]string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", fmt.Errorf("%s: trailing %% in %q", u.name, s)
		}
		i++
		switch c := s[i]; c {
		case '%':
			b.WriteByte('%')
		case 'i', 'I':
			b.WriteString(u.instance)
		case 'n':
			b.WriteString(u.name)
		case 'N':
			b.WriteString(strings.TrimSuffix(u.name, filepath.Ext(u.name)))
		case 'p':
			p, _, _ := strings.Cut(strings.TrimSuffix(u.name, filepath.Ext(u.name)), "@")
			b.WriteString(p)
		default:
			r, ok := roots[c]
			if !ok {
				return "", fmt.Errorf("%s: specifier %%%c not handled by this test", u.name, c)
			}
			b.WriteString(r)
		}
	}
	return b.String(), nil
}

// splitWords splits a command line or an Environment= value into words as
// systemd does: whitespace separates, "..." and '...' quote, a backslash
// escapes the next character.
func splitWords(s string) ([]string, error) {
	var out []string
	var w strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			inWord = true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				w.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				out = append(out, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		out = append(out, w.String())
	}
	return out, nil
}

// expandEnv replaces ${VAR} anywhere and $VAR as a whole word, as systemd
// does in ExecStart= (a whole-word $VAR splits into several words).
func expandEnv(words []string, env map[string]string) ([]string, error) {
	var out []string
	for _, w := range words {
		if strings.HasPrefix(w, "$") && !strings.HasPrefix(w, "${") {
			out = append(out, strings.Fields(env[w[1:]])...)
			continue
		}
		var b strings.Builder
		for {
			i := strings.Index(w, "${")
			if i < 0 {
				b.WriteString(w)
				break
			}
			j := strings.IndexByte(w[i:], '}')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ${ in %q", w)
			}
			name := w[i+2 : i+j]
			v, ok := env[name]
			if !ok {
				return nil, fmt.Errorf("${%s}: not in the unit's environment", name)
			}
			b.WriteString(w[:i])
			b.WriteString(v)
			w = w[i+j+1:]
		}
		out = append(out, b.String())
	}
	return out, nil
}

// readEnvFile reads an EnvironmentFile= (KEY=VALUE lines, # and ;
// comments, optional quotes).
func readEnvFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s: not an assignment: %q", path, line)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, nil
}

// startOrder sorts units by their After=/Before= relations among
// themselves (ties by name), as systemd orders the start jobs of one
// transaction.
func startOrder(t *testing.T, units []*unitFile) []*unitFile {
	t.Helper()
	byName := map[string]*unitFile{}
	for _, u := range units {
		byName[u.name] = u
	}
	after := map[string]map[string]bool{} // name → units it starts after
	for _, u := range units {
		after[u.name] = map[string]bool{}
	}
	for _, u := range units {
		for _, o := range u.words("Unit", "After") {
			if byName[o] != nil {
				after[u.name][o] = true
			}
		}
		for _, o := range u.words("Unit", "Before") {
			if byName[o] != nil {
				after[o][u.name] = true
			}
		}
	}
	var out []*unitFile
	done := map[string]bool{}
	for len(out) < len(units) {
		var ready []string
		for _, u := range units {
			if done[u.name] {
				continue
			}
			ok := true
			for o := range after[u.name] {
				ok = ok && done[o]
			}
			if ok {
				ready = append(ready, u.name)
			}
		}
		if len(ready) == 0 {
			t.Fatalf("ordering cycle among %v", after)
		}
		sort.Strings(ready)
		done[ready[0]] = true
		out = append(out, byName[ready[0]])
	}
	return out
}
