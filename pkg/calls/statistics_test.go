package calls

import (
	"context"
	"math"
	"testing"
	"time"
)

// TestCallDurationStatistics: the ended calls' total, average, squared
// total and standard deviation, as rtpengine computes them (squares of
// millisecond durations, reported in s²).
func TestCallDurationStatistics(t *testing.T) {
	for _, tc := range []struct {
		name          string
		durations     []time.Duration
		avg, stddev   time.Duration
		total         time.Duration
		totalSquareS2 float64
	}{
		{name: "none"},
		{name: "one", durations: []time.Duration{10 * time.Second}, avg: 10 * time.Second, total: 10 * time.Second, totalSquareS2: 100},
		{name: "two", durations: []time.Duration{2 * time.Second, 4 * time.Second}, avg: 3 * time.Second, stddev: time.Second,
			total: 6 * time.Second, totalSquareS2: 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Unix(1700000000, 0)
			now := t0
			e := newTestEngine(newFakePorts())
			e.now = func() time.Time { return now }
			for i, d := range tc.durations {
				id := "d" + itoa(i)
				now = t0
				if _, err := e.Offer(context.Background(), req("offer", id, "A", "", offerSDP)); err != nil {
					t.Fatal(err)
				}
				now = t0.Add(d)
				del := req("delete", id, "", "", "")
				del.DeleteDelay = 0
				if _, err := e.Delete(del); err != nil {
					t.Fatal(err)
				}
			}
			st := e.Stats()
			if st.AvgCallDuration != tc.avg || st.TotalCallsDuration != tc.total || st.CallsDurationStddev != tc.stddev ||
				math.Abs(st.TotalCallsDuration2-tc.totalSquareS2) > 1e-9 {
				t.Errorf("avg %v total %v squares %v stddev %v; want %v %v %v %v", st.AvgCallDuration, st.TotalCallsDuration,
					st.TotalCallsDuration2, st.CallsDurationStddev, tc.avg, tc.total, tc.totalSquareS2, tc.stddev)
			}
		})
	}
}
