package calls

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// manyMedia is an SDP with n audio sections.
func manyMedia(n int) string {
	var b strings.Builder
	b.WriteString("v=0\r\no=- 1 1 IN IP4 198.51.100.10\r\ns=-\r\nc=IN IP4 198.51.100.10\r\nt=0 0\r\n")
	for i := range n {
		fmt.Fprintf(&b, "m=audio %d RTP/AVP 0\r\n", 6000+2*i)
	}
	return b.String()
}

// TestMediaLimit: an SDP with more media sections than MaxMedia is
// refused before it takes a port, and leaves no call; one at the limit
// works.
func TestMediaLimit(t *testing.T) {
	cases := []struct {
		name  string
		media int
		want  error
	}{
		{"at the limit", DefaultMaxMedia, nil},
		{"one more", DefaultMaxMedia + 1, ErrTooManyMedia},
		{"a thousand", 1000, ErrTooManyMedia},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ports := newFakePorts()
			store := &memStore{saved: map[string]nodestate.Call{}}
			e := newTestEngine(ports)
			e.cfg.Store = store
			_, err := e.Offer(context.Background(), req("offer", "c1", "A", "", manyMedia(tc.media)))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want == nil {
				return
			}
			if Reason(err) != "Too many media sections in SDP" {
				t.Fatalf("reason %q", Reason(err))
			}
			if own, _ := e.Counts(); own != 0 || ports.taken != 0 || len(store.saved) != 0 {
				t.Fatalf("left behind: %d calls, %d pairs taken, %d records", own, ports.taken, len(store.saved))
			}
		})
	}
}

// TestLegLimit: answers from ever more forks (new to-tags) are refused
// once the call has MaxLegs legs; the refused answer adds no leg, takes no
// port, and the call goes on as it was.
func TestLegLimit(t *testing.T) {
	ports := newFakePorts()
	store := &memStore{saved: map[string]nodestate.Call{}}
	e := newTestEngine(ports)
	e.cfg.Store = store
	e.cfg.Limits.MaxLegs = 4
	ctx := context.Background()
	if _, err := e.Offer(ctx, req("offer", "c1", "A", "", offerSDP)); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := e.Answer(ctx, req("answer", "c1", "A", fmt.Sprintf("B%d", i), answerSDP)); err != nil {
			t.Fatalf("answer of fork %d: %v", i, err)
		}
	}
	before := e.mustRecord(t, "c1")
	taken := ports.taken
	_, err := e.Answer(ctx, req("answer", "c1", "A", "B4", answerSDP))
	if !errors.Is(err, ErrTooManyLegs) || Reason(err) != "Too many call legs" {
		t.Fatalf("fifth leg: %v", err)
	}
	if after := e.mustRecord(t, "c1"); !sameRecord(before, after) || len(after.Legs) != 4 {
		t.Fatalf("the refused fork changed the call:\n%+v\n%+v", before, after)
	}
	if ports.taken != taken {
		t.Fatalf("the refused fork kept %d pairs", ports.taken-taken)
	}
}
