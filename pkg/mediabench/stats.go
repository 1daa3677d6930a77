package mediabench

import "slices"

// reservoir keeps a uniform random sample of at most cap(samples) values
// out of all those offered (Vitter's algorithm R), without allocating
// once full.
type reservoir struct {
	samples []int64
	seen    uint64
	rng     uint64
}

func newReservoir(n int) *reservoir {
	return &reservoir{samples: make([]int64, 0, n), rng: 0x9e3779b97f4a7c15}
}

func (r *reservoir) add(v int64) {
	r.seen++
	if len(r.samples) < cap(r.samples) {
		r.samples = append(r.samples, v)
		return
	}
	// xorshift64
	r.rng ^= r.rng << 13
	r.rng ^= r.rng >> 7
	r.rng ^= r.rng << 17
	if j := r.rng % r.seen; j < uint64(len(r.samples)) {
		r.samples[j] = v
	}
}

// percentiles returns the p-th percentiles (0..100) of the samples, in
// the unit of the samples; zero without samples.
func (r *reservoir) percentiles(ps ...float64) []float64 {
	out := make([]float64, len(ps))
	if len(r.samples) == 0 {
		return out
	}
	s := slices.Clone(r.samples)
	slices.Sort(s)
	for i, p := range ps {
		k := int(p / 100 * float64(len(s)))
		out[i] = float64(s[min(max(k, 0), len(s)-1)])
	}
	return out
}
