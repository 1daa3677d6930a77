package codec

// growPCM returns pcm with room for n more samples, its length extended
// by n (the caller trims it to what it wrote).
func growPCM(pcm []int16, n int) []int16 {
	if cap(pcm)-len(pcm) < n {
		pcm = append(pcm[:cap(pcm)], make([]int16, n-(cap(pcm)-len(pcm)))...)[:len(pcm)]
	}
	return pcm[:len(pcm)+n]
}

// growBytes is growPCM for bytes.
func growBytes(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		b = append(b[:cap(b)], make([]byte, n-(cap(b)-len(b)))...)[:len(b)]
	}
	return b[:len(b)+n]
}
