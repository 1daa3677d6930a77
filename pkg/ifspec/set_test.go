package ifspec

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func cfg(ifaces []string, ranges ...string) Config {
	return Config{
		Interfaces: ifaces,
		PortRanges: ranges,
		PortMin:    DefaultPortMin,
		PortMax:    DefaultPortMax,
		Resolver:   fakeResolver,
	}
}

func TestSetGrouping(t *testing.T) {
	s, err := New(cfg([]string{
		"pub/2001:db8::1!2001:db8::99",
		"priv/10.0.0.1",
		"pub/203.0.113.1",
		"pub/203.0.113.2",
	}, "pub/40000-49999"))
	if err != nil {
		t.Fatal(err)
	}
	ifs := s.Interfaces()
	if len(ifs) != 2 || ifs[0].Name != "pub" || ifs[1].Name != "priv" {
		t.Fatalf("Interfaces() = %v", ifs)
	}
	pub := ifs[0]
	wantLocals := []netip.Addr{mp("2001:db8::1"), mp("203.0.113.1"), mp("203.0.113.2")}
	for i, a := range pub.Addresses {
		if a.Local != wantLocals[i] {
			t.Errorf("pub address %d = %v, want %v", i, a.Local, wantLocals[i])
		}
	}
	if pub.PortMin != 40000 || pub.PortMax != 49999 {
		t.Errorf("pub range %d-%d", pub.PortMin, pub.PortMax)
	}
	if ifs[1].PortMin != DefaultPortMin || ifs[1].PortMax != DefaultPortMax {
		t.Errorf("priv range %d-%d, want the global one", ifs[1].PortMin, ifs[1].PortMax)
	}

	if a, ok := s.Primary("pub", IPv4); !ok || a.Local != mp("203.0.113.1") {
		t.Errorf("Primary(pub, IPv4) = %v, %v", a, ok)
	}
	if a, ok := s.Primary("pub", IPv6); !ok || a.Local != mp("2001:db8::1") || a.SDPAddr() != mp("2001:db8::99") {
		t.Errorf("Primary(pub, IPv6) = %v, %v", a, ok)
	}
	if _, ok := s.Primary("priv", IPv6); ok {
		t.Error("Primary(priv, IPv6) found an address")
	}
	if _, ok := s.Primary("nosuch", IPv4); ok {
		t.Error("Primary(nosuch) found an address")
	}
	if got := pub.Of(IPv4); len(got) != 2 || got[1].Local != mp("203.0.113.2") {
		t.Errorf("Of(IPv4) = %v", got)
	}
	if ifc, ok := s.Default(IPv4); !ok || ifc.Name != "pub" {
		t.Errorf("Default(IPv4) = %v, %v", ifc.Name, ok)
	}
	if ifc, ok := s.Lookup("priv"); !ok || len(ifc.Addresses) != 1 {
		t.Errorf("Lookup(priv) = %v, %v", ifc, ok)
	}
	if _, ok := s.Lookup("nosuch"); ok {
		t.Error("Lookup(nosuch) succeeded")
	}
	if lo, hi, ok := s.PortRange(mp("::ffff:203.0.113.2")); !ok || lo != 40000 || hi != 49999 {
		t.Errorf("PortRange = %d-%d %v", lo, hi, ok)
	}
	if _, _, ok := s.PortRange(mp("192.0.2.99")); ok {
		t.Error("PortRange of an unknown address succeeded")
	}

	// Lookups return copies.
	ifc, _ := s.Lookup("pub")
	ifc.Addresses[0].Name = "changed"
	if again, _ := s.Lookup("pub"); again.Addresses[0].Name != "pub" {
		t.Error("Lookup result aliases the Set")
	}
}

func TestSetDefaultPerFamily(t *testing.T) {
	s, err := New(cfg([]string{"v4only/10.0.0.1", "both/10.0.0.2", "both/2001:db8::2", "v6/2001:db8::3"}))
	if err != nil {
		t.Fatal(err)
	}
	if ifc, _ := s.Default(IPv4); ifc.Name != "v4only" {
		t.Errorf("Default(IPv4) = %q", ifc.Name)
	}
	if ifc, _ := s.Default(IPv6); ifc.Name != "both" {
		t.Errorf("Default(IPv6) = %q", ifc.Name)
	}
	s, err = New(cfg([]string{"10.0.0.1"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Default(IPv6); ok {
		t.Error("Default(IPv6) found an interface in an IPv4-only set")
	}
}

func TestSetSharedAddress(t *testing.T) {
	s, err := New(cfg([]string{"a/10.0.0.1", "b/10.0.0.1!203.0.113.1", "a/lo"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{mp("10.0.0.1"), mp("127.0.0.1"), mp("::1")}
	if got := s.LocalAddrs(); !reflect.DeepEqual(got, want) {
		t.Errorf("LocalAddrs() = %v, want %v", got, want)
	}
	// Same range on both (explicit and global agree) is fine.
	if _, err := New(cfg([]string{"a/10.0.0.1", "b/10.0.0.1"}, "a/30000-40000")); err != nil {
		t.Errorf("equal ranges on a shared address: %v", err)
	}
}

func TestSetErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		err     error
		wantSub string
	}{
		{"no interfaces", cfg(nil), errNoInterfaces, "at least one --interface"},
		{"bad spec", cfg([]string{"10.0.0.1", "0.0.0.0"}), errWildcard, `interface "0.0.0.0"`},
		{"duplicate", cfg([]string{"pub/10.0.0.1", "priv/10.0.0.2", "pub/10.0.0.1!1.2.3.4"}), errDuplicate,
			`interface "pub/10.0.0.1!1.2.3.4": duplicate local address 10.0.0.1: interface "pub" already has it`},
		{"duplicate via device", cfg([]string{"127.0.0.1", "lo"}), errDuplicate, "127.0.0.1"},
		{"duplicate mapped", cfg([]string{"10.0.0.1", "::ffff:10.0.0.1"}), errDuplicate, "10.0.0.1"},
		{"unknown in range", cfg([]string{"pub/10.0.0.1"}, "priv/40000-40100"), errUnknownInterface, `unknown interface "priv"`},
		{"default not configured", cfg([]string{"pub/10.0.0.1"}, "default/40000-40100"), errUnknownInterface, `"default"`},
		{"range twice", cfg([]string{"pub/10.0.0.1"}, "pub/40000-40100", "pub/40000-40100"), errBadPortRange, "has a port range already"},
		{"bad range", cfg([]string{"pub/10.0.0.1"}, "pub/40100-40000"), errBadPortRange, "above maximum"},
		{"shared conflict", cfg([]string{"a/10.0.0.1", "b/10.0.0.1"}, "b/40000-40100"), errPortRangeConflict,
			`interfaces "a" (30000-40000) and "b" (40000-40100) share local address 10.0.0.1`},
		{"global min 0", Config{Interfaces: []string{"10.0.0.1"}, PortMax: 40000}, errBadPortRange, "port-min/port-max"},
		{"global reversed", Config{Interfaces: []string{"10.0.0.1"}, PortMin: 5, PortMax: 4}, errBadPortRange, "above maximum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if err == nil {
				t.Fatalf("New = %v, want error", s.Interfaces())
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("New: %v, want errors.Is %v", err, tt.err)
			}
			if !strings.Contains(err.Error(), tt.wantSub) {
				t.Errorf("New: %q, want it to contain %q", err, tt.wantSub)
			}
		})
	}
}

func TestParsePortRange(t *testing.T) {
	valid := []struct {
		s        string
		name     string
		min, max int
	}{
		{"pub/40000-49999", "pub", 40000, 49999},
		{"default/1-3", "default", 1, 3},
		{"x/2-3", "x", 2, 3},
		{"x/65534-65535", "x", 65534, 65535},
		{" pub:1/00100-00200 ", "pub:1", 100, 200},
		{"x/1-65535", "x", 1, 65535},
	}
	for _, tt := range valid {
		name, lo, hi, err := ParsePortRange(tt.s)
		if err != nil || name != tt.name || lo != tt.min || hi != tt.max {
			t.Errorf("ParsePortRange(%q) = %q, %d, %d, %v; want %q, %d, %d", tt.s, name, lo, hi, err, tt.name, tt.min, tt.max)
		}
	}
	invalid := []struct {
		s       string
		err     error
		wantSub string
	}{
		{"", errBadPortRange, "want NAME/MIN-MAX"},
		{"40000-49999", errBadPortRange, "want NAME/MIN-MAX"},
		{"/40000-49999", errEmpty, "empty interface name"},
		{"p b/1-2", errBadName, "not allowed"},
		{"pub/40000", errBadPortRange, "want NAME/MIN-MAX"},
		{"pub/-40000", errBadPortRange, "MIN is empty"},
		{"pub/40000-", errBadPortRange, "MAX is empty"},
		{"pub/+1-2", errBadPortRange, `"+1" is not a port number`},
		{"pub/1-2-3", errBadPortRange, `"2-3" is not a port number`},
		{"pub/1 -2", errBadPortRange, "not a port number"},
		{"pub/0-100", errBadPortRange, "minimum 0 is not between 1 and 65535"},
		{"pub/100-65536", errBadPortRange, "maximum 65536 is not between"},
		{"pub/99999999999999999999-1", errBadPortRange, "not a port number"},
		{"pub/200-100", errBadPortRange, "minimum 200 is above maximum 100"},
		{"pub/100-100", errBadPortRange, "fewer than 2 ports"},
		{"pub/30001-30002", errBadPortRange, "no RTP/RTCP pair"},
	}
	for _, tt := range invalid {
		_, _, _, err := ParsePortRange(tt.s)
		if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.wantSub) {
			t.Errorf("ParsePortRange(%q) = %v; want errors.Is %v containing %q", tt.s, err, tt.err, tt.wantSub)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "port range ") {
			t.Errorf("ParsePortRange(%q): error %q does not name the value", tt.s, err)
		}
	}
}

func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"pub/40000-49999", "default/1-3", "x/65534-65535", "/1-2", "a/1-", "a/-", "a/0-0",
		"a/30001-30002", "a/+1-2", "a/99999999999999999999-1", "1.2.3.4/1-100"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, lo, hi, err := ParsePortRange(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "port range ") {
				t.Fatalf("ParsePortRange(%q): error %q does not name the value", s, err)
			}
			return
		}
		if checkName(name) != nil || name == "" || lo < 1 || hi > 65535 || lo > hi || lo+lo%2+1 > hi {
			t.Fatalf("ParsePortRange(%q) = %q, %d, %d accepted", s, name, lo, hi)
		}
	})
}
