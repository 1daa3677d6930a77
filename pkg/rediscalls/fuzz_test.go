package rediscalls

import (
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// FuzzDecode feeds the reader what another writer (or anyone with access
// to the database) may have left in a call's keys: it must return an entry
// or an error, never panic.
func FuzzDecode(f *testing.F) {
	c := testCall("seed", []nodestate.PayloadType{pcmu, opus}, nil)
	enc, err := encode(&Entry{Call: c, Updated: time.UnixMilli(1)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("1", enc.call, `{"10.0.0.1:30000":"192.0.2.9:4000"}`, "0", "0/PCMU/8000", "1", "96/opus/48000/2/x=y")
	f.Add("1", `{"id":"seed","owner":"a","legs":[{"medias":[{}]}]}`, "", "x", "1/2", "", "")
	f.Add("2", "{}", "{}", "", "", "", "")
	f.Fuzz(func(t *testing.T, schema, call, endpoints, k1, v1, k2, v2 string) {
		h := map[string]string{"schema": schema, "call": call, "endpoints": endpoints, "owner": "a", "rev": "1", "updated": "5"}
		e, err := decode("seed", h, []map[string]string{{k1: v1, k2: v2}, {k2: v1}})
		if err == nil && (e == nil || e.Call.ID != "seed") {
			t.Fatalf("decode returned %+v without error", e)
		}
	})
}
