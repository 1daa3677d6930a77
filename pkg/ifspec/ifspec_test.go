package ifspec

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

var mp = netip.MustParseAddr

// fakeDevices is the system the tests pretend to run on.
var fakeDevices = map[string][]netip.Addr{
	"lo":     {mp("127.0.0.1"), mp("::1")},
	"eth0":   {mp("192.0.2.2"), mp("fe80::fc:ff:fe00:1"), mp("fd00::2"), mp("::ffff:10.1.1.1"), mp("192.0.2.2"), mp("192.0.2.3")},
	"ll0":    {mp("fe80::1")},
	"down0":  nil,
	"v6only": {mp("2001:db8::7")},
}

func fakeResolver(name string) ([]netip.Addr, error) {
	a, ok := fakeDevices[name]
	if !ok {
		return nil, errors.New("no such network interface")
	}
	return a, nil
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		spec string
		want []Address
	}{
		{"10.0.0.1", []Address{{Name: "default", Local: mp("10.0.0.1")}}},
		{"  10.0.0.1\t", []Address{{Name: "default", Local: mp("10.0.0.1")}}},
		{"pub/10.0.0.1", []Address{{Name: "pub", Local: mp("10.0.0.1")}}},
		{"pub/10.0.0.1!203.0.113.5", []Address{{Name: "pub", Local: mp("10.0.0.1"), Advertised: mp("203.0.113.5")}}},
		{"::1", []Address{{Name: "default", Local: mp("::1")}}},
		{"[::1]", []Address{{Name: "default", Local: mp("::1")}}},
		{"v6/[2001:db8::1]![2001:db8::99]", []Address{{Name: "v6", Local: mp("2001:db8::1"), Advertised: mp("2001:db8::99")}}},
		{"v6/2001:db8::1!2001:db8::99", []Address{{Name: "v6", Local: mp("2001:db8::1"), Advertised: mp("2001:db8::99")}}},
		{"::ffff:10.0.0.1", []Address{{Name: "default", Local: mp("10.0.0.1")}}},
		{"[::ffff:10.0.0.1]!::ffff:1.2.3.4", []Address{{Name: "default", Local: mp("10.0.0.1"), Advertised: mp("1.2.3.4")}}},
		{"pub:1/10.0.0.1", []Address{{Name: "pub:1", Local: mp("10.0.0.1")}}},
		{"a-b_c.d/10.0.0.1", []Address{{Name: "a-b_c.d", Local: mp("10.0.0.1")}}},
		{"169.254.1.1", []Address{{Name: "default", Local: mp("169.254.1.1")}}},
		{"lo", []Address{
			{Name: "default", Local: mp("127.0.0.1"), Device: "lo"},
			{Name: "default", Local: mp("::1"), Device: "lo"},
		}},
		// Link-local dropped, mapped unmapped, duplicate collapsed, order kept.
		{"int/eth0", []Address{
			{Name: "int", Local: mp("192.0.2.2"), Device: "eth0"},
			{Name: "int", Local: mp("fd00::2"), Device: "eth0"},
			{Name: "int", Local: mp("10.1.1.1"), Device: "eth0"},
			{Name: "int", Local: mp("192.0.2.3"), Device: "eth0"},
		}},
		// An advertised address keeps only the addresses of its family.
		{"pub/eth0!203.0.113.5", []Address{
			{Name: "pub", Local: mp("192.0.2.2"), Advertised: mp("203.0.113.5"), Device: "eth0"},
			{Name: "pub", Local: mp("10.1.1.1"), Advertised: mp("203.0.113.5"), Device: "eth0"},
			{Name: "pub", Local: mp("192.0.2.3"), Advertised: mp("203.0.113.5"), Device: "eth0"},
		}},
		{"pub/eth0!2001:db8::5", []Address{
			{Name: "pub", Local: mp("fd00::2"), Advertised: mp("2001:db8::5"), Device: "eth0"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ParseWith(tt.spec, fakeResolver)
			if err != nil {
				t.Fatalf("ParseWith(%q): %v", tt.spec, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseWith(%q)\n got %v\nwant %v", tt.spec, got, tt.want)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		spec    string
		err     error
		wantSub string
	}{
		{"", errEmpty, `interface "": empty specification`},
		{"   ", errEmpty, "empty specification"},
		{"/10.0.0.1", errEmpty, `empty name before "/"`},
		{"pub/", errEmpty, "empty address"},
		{"pub/!1.2.3.4", errEmpty, "empty address"},
		{"10.0.0.1!", errEmpty, `empty advertised address after "!"`},
		{"0.0.0.0", errWildcard, `interface "0.0.0.0": wildcard address 0.0.0.0 is not allowed; give the exact local address`},
		{"pub/::", errWildcard, "wildcard address :: is not allowed"},
		{"[::]", errWildcard, "wildcard address :: is not allowed"},
		{"::ffff:0.0.0.0", errWildcard, "wildcard address 0.0.0.0"},
		{"10.0.0.1!0.0.0.0", errWildcard, "advertised wildcard address 0.0.0.0 is not allowed"},
		{"224.0.0.1", errNotUnicast, "address 224.0.0.1 is multicast"},
		{"ff02::1", errNotUnicast, "multicast"},
		{"10.0.0.1!239.1.1.1", errNotUnicast, "advertised address 239.1.1.1 is multicast"},
		{"255.255.255.255", errNotUnicast, "broadcast"},
		{"fe80::1", errLinkLocal, "link-local"},
		{"fe80::1%eth0", errBadAddress, "not an IP address"},
		{"10.0.0.1!fe80::1", errLinkLocal, "advertised address fe80::1"},
		{"10.0.0.1!2001:db8::1", errFamilyMismatch, "advertised address 2001:db8::1 is IPv6 but local address 10.0.0.1 is IPv4"},
		{"::1!10.0.0.1", errFamilyMismatch, "is IPv4 but local address ::1 is IPv6"},
		{"10.0.0.256", errBadAddress, `invalid address "10.0.0.256": not an IP address`},
		{"10.0.0", errBadAddress, "not an IP address"},
		{"2001:db8::g", errBadAddress, "not an IP address"},
		{"[10.0.0.1]", errBadAddress, "not an IP address"},
		{"[::1", errBadAddress, "not an IP address"},
		{"::1]", errBadAddress, "not an IP address"},
		{"10.0.0.1!host.example", errBadAddress, "DNS names are not supported"},
		{"10.0.0.1!eth0", errBadAddress, "not an IP address"},
		{"10.0.0.1!1.2.3.4!5.6.7.8", errBadAddress, "not an IP address"},
		{"a/b/10.0.0.1", errBadAddress, "neither an IP address nor a system interface name"},
		{"10.0.0.1/24", errBadName, "it is an address"},
		{"::1/128", errBadName, "it is an address"},
		{"pu b/10.0.0.1", errBadName, "character ' ' not allowed"},
		{"pub!/10.0.0.1", errBadName, "not allowed"},
		{strings.Repeat("n", 65) + "/10.0.0.1", errBadName, "longer than 64"},
		{"eth9", errNoSuchInterface, `no such system interface "eth9"`},
		{"pub/averyveryverylongname", errBadAddress, "at most 15 characters"},
		{"eth 0", errBadAddress, "neither an IP address nor a system interface name"},
		{"down0", errNoUsableAddress, `system interface "down0" has no usable address`},
		{"ll0", errNoUsableAddress, "no usable address"},
		{"v6only!1.2.3.4", errNoUsableAddress, `"v6only" has no usable IPv4 address`},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ParseWith(tt.spec, fakeResolver)
			if err == nil {
				t.Fatalf("ParseWith(%q) = %v, want error", tt.spec, got)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("ParseWith(%q) = %v, want errors.Is %v", tt.spec, err, tt.err)
			}
			if !strings.Contains(err.Error(), tt.wantSub) {
				t.Errorf("ParseWith(%q) = %q, want it to contain %q", tt.spec, err, tt.wantSub)
			}
			if !strings.Contains(err.Error(), "interface ") {
				t.Errorf("error %q does not name the interface spec", err)
			}
		})
	}
}

func TestSystemResolverLoopback(t *testing.T) {
	addrs, err := Parse("lo")
	if err != nil {
		t.Skipf("no usable loopback interface named lo here: %v", err)
	}
	found := false
	for _, a := range addrs {
		if a.Local == mp("127.0.0.1") {
			found = true
		}
		if a.Local.Is6() && a.Local.IsLinkLocalUnicast() {
			t.Errorf("link-local address %v not dropped", a.Local)
		}
		if a.Local.Is4In6() {
			t.Errorf("mapped address %v not unmapped", a.Local)
		}
	}
	if !found {
		t.Errorf("Parse(lo) = %v, want 127.0.0.1 among them", addrs)
	}
	if _, err := Parse("rtpkit-nosuch0"); !errors.Is(err, errNoSuchInterface) {
		t.Errorf("Parse(rtpkit-nosuch0) = %v, want %v", err, errNoSuchInterface)
	}
}

func TestAddressMethods(t *testing.T) {
	a := Address{Name: "pub", Local: mp("10.0.0.1")}
	if a.SDPAddr() != mp("10.0.0.1") || a.String() != "pub/10.0.0.1" || a.Family() != IPv4 {
		t.Errorf("unexpected %v %v %v", a.SDPAddr(), a.String(), a.Family())
	}
	a = Address{Name: "pub", Local: mp("2001:db8::1"), Advertised: mp("2001:db8::2")}
	if a.SDPAddr() != mp("2001:db8::2") || a.String() != "pub/2001:db8::1!2001:db8::2" || a.Family() != IPv6 {
		t.Errorf("unexpected %v %v %v", a.SDPAddr(), a.String(), a.Family())
	}
	if IPv4.String() != "IPv4" || IPv6.String() != "IPv6" || Family(9).String() != "Family(9)" {
		t.Error("Family.String")
	}
}

// checkResult asserts the invariants of a successful parse of spec.
func checkResult(t *testing.T, spec string, got []Address) {
	t.Helper()
	if len(got) == 0 {
		t.Fatalf("ParseWith(%q) returned no address and no error", spec)
	}
	for _, a := range got {
		if !usable(a.Local) || a.Local.Is4In6() || a.Local.Zone() != "" {
			t.Fatalf("ParseWith(%q): unusable local address %v", spec, a.Local)
		}
		if a.Advertised.IsValid() && (!usable(a.Advertised) || a.Advertised.Is4In6() || FamilyOf(a.Advertised) != a.Family()) {
			t.Fatalf("ParseWith(%q): bad advertised address %v for %v", spec, a.Advertised, a.Local)
		}
		if a.Name == "" || checkName(a.Name) != nil {
			t.Fatalf("ParseWith(%q): bad name %q", spec, a.Name)
		}
		// The canonical form reads back to the same address.
		back, err := ParseWith(a.String(), fakeResolver)
		want := a
		want.Device = ""
		if err != nil || len(back) != 1 || back[0] != want {
			t.Fatalf("ParseWith(%q) -> %v -> ParseWith(%q) = %v, %v", spec, a, a.String(), back, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"10.0.0.1", "pub/10.0.0.1!203.0.113.5", "::1", "[::1]", "v6/[2001:db8::1]![2001:db8::99]",
		"::ffff:10.0.0.1", "pub:1/lo", "eth0", "int/eth0!1.2.3.4", "eth0!2001:db8::1", "down0", "ll0",
		"0.0.0.0", "::", "224.0.0.1", "fe80::1%eth0", "10.0.0.1/24", "/x", "x/", "!", "a/b!c", "[", "[]",
		"10.0.0.1!2001:db8::1", " pub/10.0.0.1 ", "eth9", "\x00", "pub/\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		got, err := ParseWith(spec, fakeResolver)
		if err != nil {
			if got != nil {
				t.Fatalf("ParseWith(%q) returned %v with error %v", spec, got, err)
			}
			if !strings.HasPrefix(err.Error(), "interface ") {
				t.Fatalf("ParseWith(%q): error %q does not start with the spec", spec, err)
			}
			return
		}
		checkResult(t, spec, got)
	})
}
