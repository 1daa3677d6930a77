package calls

import "net/netip"

type netipAddrPort = netip.AddrPort

func mustParseAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
