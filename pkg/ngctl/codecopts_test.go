package ngctl

import (
	"reflect"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/calls"
)

// The codec options come from the codec dictionary, then the codec-X-…
// flags, in the order given, with "--" for "=".
func TestCodecOptions(t *testing.T) {
	dict := bencode.NewDict(
		bencode.Pair{Key: "strip", Value: bencode.Strs("all")},
		bencode.Pair{Key: "offer", Value: bencode.Strs("PCMA", "iLBC/8000/1///mode--30")},
		bencode.Pair{Key: "mask", Value: bencode.Strs("opus")})
	got := codecOptions(dict, []string{"trust-address", "codec-offer-PCMU", "codec-except-telephone-event", "codec-strip-G729", "codec-mask-G722"})
	want := calls.CodecOptions{Strip: []string{"all", "G729"}, Offer: []string{"PCMA", "iLBC/8000/1///mode=30", "PCMU"}, Except: []string{"telephone-event"},
		Mask: []string{"opus", "G722"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if o := codecOptions(bencode.Value{}, nil); !reflect.DeepEqual(o, calls.CodecOptions{}) {
		t.Fatalf("no options: %+v", o)
	}
}
