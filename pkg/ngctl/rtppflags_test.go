package ngctl

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/bencode"
)

func TestMergeRTPPFlags(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   bencode.Value
		want string // the merged dictionary, bencode.Format
		err  string
	}{
		{
			name: "flags, keys, transport, direction",
			in: bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("offer")},
				bencode.Pair{Key: "flags", Value: bencode.Strs("trust-address")},
				bencode.Pair{Key: "rtpp_flags", Value: bencode.Str("replace-origin via-branch=auto-next strict-source label=callee transport-protocol=RTP/AVP address-family=IP4 internal direction=external")}),
			want: `{"command": "offer", "flags": ["trust-address", "replace-origin", "strict-source"], "via-branch": "auto-next", "label": "callee", "transport-protocol": "RTP/AVP", "address-family": "IP4", "direction": ["internal", "external"]}`,
		},
		{
			name: "codec dictionary and shorthands",
			in: bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("offer")},
				bencode.Pair{Key: "rtpp-flags", Value: bencode.Str("via-branch=auto-next OSRTP=[accept] codec=[transcode=[PCMA PCMU] accept=[AMR-WB AMR] strip=[EVS]] codec-strip-G722 transcode-opus")}),
			want: `{"command": "offer", "via-branch": "auto-next", "OSRTP": ["accept"], "codec": {"transcode": ["PCMA", "PCMU", "opus"], "accept": ["AMR-WB", "AMR"], "strip": ["EVS", "G722"]}}`,
		},
		{
			name: "transport from parts, later key wins over earlier",
			in: bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("offer")},
				bencode.Pair{Key: "ICE", Value: bencode.Str("remove")},
				bencode.Pair{Key: "rtpp flags", Value: bencode.Str("  RTP SRTP AVPF ICE=force  ")},
				bencode.Pair{Key: "label", Value: bencode.Str("x")}),
			want: `{"command": "offer", "ICE": "force", "transport-protocol": "RTP/SAVPF", "label": "x"}`,
		},
		{name: "unclosed", in: rtpp("codec=[transcode=[PCMA"), err: "not closed"},
		{name: "stray bracket", in: rtpp("a] b"), err: "unexpected"},
		{name: "dict entry without =", in: rtpp("codec=[strip=[EVS] PCMA]"), err: "without '='"},
		{name: "too deep", in: rtpp("x=" + strings.Repeat("[", 20) + strings.Repeat("]", 20)), err: "deeper"},
		{name: "not a string", in: bencode.NewDict(bencode.Pair{Key: "rtpp-flags", Value: bencode.Int(1)}), err: "not a string"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mergeRTPPFlags(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := fmtValue(got); s != tt.want {
				t.Errorf("got  %s\nwant %s", s, tt.want)
			}
		})
	}
}

func rtpp(s string) bencode.Value {
	return bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("offer")}, bencode.Pair{Key: "rtpp-flags", Value: bencode.Str(s)})
}

// fmtValue writes v as JSON-like text, keys in their order.
func fmtValue(v bencode.Value) string {
	var b strings.Builder
	var walk func(v bencode.Value)
	walk = func(v bencode.Value) {
		switch v.Kind {
		case bencode.KindString:
			b.WriteString(`"` + v.Str + `"`)
		case bencode.KindList:
			b.WriteString("[")
			for i, x := range v.List {
				if i > 0 {
					b.WriteString(", ")
				}
				walk(x)
			}
			b.WriteString("]")
		case bencode.KindDict:
			b.WriteString("{")
			for i, p := range v.Dict {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(`"` + p.Key + `": `)
				walk(p.Value)
			}
			b.WriteString("}")
		default:
			fmt.Fprint(&b, v.Num)
		}
	}
	walk(v)
	return b.String()
}

// FuzzRTPPFlags: any string either parses or is refused with an error;
// nothing panics, and what parses merges into a request that encodes.
func FuzzRTPPFlags(f *testing.F) {
	for _, s := range []string{
		"replace-origin via-branch=auto-next strict-source label=callee OSRTP-accept transport-protocol=RTP/AVP address-family=IP4",
		"via-branch=auto-next OSRTP=[accept] codec=[transcode=[PCMA PCMU] accept=[AMR-WB AMR] strip=[EVS]]",
		"RTP SRTP AVPF DTLS internal external direction=x ICE=force codec-mask-opus transcode=G722 [ ] ==",
		"a=[[b] [c [d]]] e=[f=g h=[i]]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := mergeRTPPFlags(rtpp(s))
		if err != nil {
			return
		}
		if _, err := bencode.Decode(bencode.Encode(got), bencode.Limits{}); err != nil {
			t.Fatalf("merged request does not round-trip: %v", err)
		}
	})
}
