package fdpass

import (
	"bytes"
	"errors"
	"testing"
)

func TestParseFrame(t *testing.T) {
	enc := func(items ...Item) []byte {
		b, _ := appendFrame(nil, nil, items)
		return b
	}
	tests := []struct {
		name  string
		in    []byte
		items int
		fds   int
		ok    bool
	}{
		{"one plain item", enc(Item{Meta: []byte("hi"), FD: NoFD}), 1, 0, true},
		{"fd items", enc(Item{Meta: []byte("a"), FD: 7}, Item{FD: NoFD}, Item{Meta: []byte("b"), FD: 9}), 3, 2, true},
		{"empty", nil, 0, 0, false},
		{"short header", []byte{0xFD, 1, 0}, 0, 0, false},
		{"bad magic", []byte{0xFE, 1, 0, 1, 0, 0, 0, 0, 0}, 0, 0, false},
		{"bad version", []byte{0xFD, 2, 0, 1, 0, 0, 0, 0, 0}, 0, 0, false},
		{"no items", []byte{0xFD, 1, 0, 0, 0, 0}, 0, 0, false},
		{"count beyond data", []byte{0xFD, 1, 0, 2, 0, 0, 0, 0, 0}, 0, 0, false},
		{"meta beyond data", []byte{0xFD, 1, 0, 1, 0, 0, 0, 0, 5, 'a'}, 0, 0, false},
		{"unknown flag", []byte{0xFD, 1, 0, 1, 0, 0, 2, 0, 0}, 0, 0, false},
		{"declared fds mismatch", []byte{0xFD, 1, 0, 1, 0, 0, 1, 0, 0}, 0, 0, false},
		{"declared fds above items", []byte{0xFD, 1, 0, 1, 0, 2, 1, 0, 0}, 0, 0, false},
		{"trailing byte", []byte{0xFD, 1, 0, 1, 0, 0, 0, 0, 0, 0}, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, nfd, err := parseFrame(tt.in)
			if !tt.ok {
				if !errors.Is(err, ErrBadFrame) {
					t.Errorf("parseFrame = %v, %d, %v; want ErrBadFrame", items, nfd, err)
				}
				return
			}
			if err != nil || len(items) != tt.items || nfd != tt.fds {
				t.Fatalf("parseFrame = %d items, %d fds, %v; want %d, %d", len(items), nfd, err, tt.items, tt.fds)
			}
		})
	}
}

// FuzzParseFrame checks that the frame decoder never panics, never claims
// more descriptors than a message can carry, and accepts only canonical
// encodings.
func FuzzParseFrame(f *testing.F) {
	seeds := [][]Item{
		{{Meta: []byte("req"), FD: NoFD}},
		{{Meta: []byte(`{"alloc":1,"role":"rtp"}`), FD: 3}, {Meta: []byte(`{"alloc":1,"role":"rtcp"}`), FD: 4}},
		{{FD: NoFD}, {FD: 5}, {Meta: bytes.Repeat([]byte{0}, 300), FD: NoFD}},
	}
	for _, s := range seeds {
		b, _ := appendFrame(nil, nil, s)
		f.Add(b)
	}
	f.Add([]byte{0xFD, 1, 0xFF, 0xFF, 0, 0xFD})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		items, nfd, err := parseFrame(b)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("error %v does not wrap ErrBadFrame", err)
			}
			return
		}
		if len(items) == 0 || nfd > MaxFDs || nfd > len(items) {
			t.Fatalf("accepted %d items with %d descriptors", len(items), nfd)
		}
		next := 0
		for _, it := range items {
			if it.FD != NoFD {
				if it.FD != next {
					t.Fatalf("descriptor index %d, want %d", it.FD, next)
				}
				next++
			}
		}
		re, fds := appendFrame(nil, nil, items)
		if !bytes.Equal(re, b) || len(fds) != nfd {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, re)
		}
	})
}
