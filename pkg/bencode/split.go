package bencode

import "math"

// Split returns the length of the one complete bencode value at the start of
// b, ignoring whatever follows it. It is meant for finding message
// boundaries in a byte stream (ng over TCP).
//
// If b is a proper prefix of a valid value (including empty b), Split
// returns an error that matches ErrIncomplete: read more and call again. Any
// other error means no number of further bytes can make b valid. Split
// applies the same syntax rules as [Decode] but no [Limits]: it allocates
// nothing except errors and one byte per nesting level past 64, so the
// caller must bound how much it buffers.
func Split(b []byte) (n int, err error) { return scan(b, nil) }

// counts is what scan tallies for the decoder to size its storage.
type counts struct {
	items int // list items
	pairs int // dictionary pairs
}

// scan is Split for both input types; if cnt is not nil it also counts the
// list items and dictionary pairs of the value.
func scan[T text](b T, cnt *counts) (int, error) {
	// Each open container is one byte on the stack: 'l' for a list, 'k'
	// for a dictionary expecting a key or its end, 'v' for a dictionary
	// expecting the value of the key just read.
	var buf [64]byte
	stack := buf[:0]
	p := 0
	for {
		if p >= len(b) {
			return 0, errAt(p, ErrIncomplete, "")
		}
		top := byte(0)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		c := b[p]
		switch {
		case c == 'e':
			if top != 'l' && top != 'k' {
				if top == 'v' {
					return 0, errAt(p, ErrSyntax, "dictionary key without value")
				}
				return 0, errAt(p, ErrSyntax, "unexpected byte 'e'")
			}
			stack = stack[:len(stack)-1]
			p++
		case top == 'k' && !isDigit(c):
			if c == '+' || c == '-' {
				return 0, errAt(p, ErrInvalidLength, "sign in string length")
			}
			return 0, errAt(p, ErrSyntax, "dictionary key is not a string")
		case isDigit(c):
			l, q, err := scanLen(b, p, math.MaxInt)
			if err != nil {
				return 0, err
			}
			if l > len(b)-q {
				return 0, errAt(len(b), ErrIncomplete, "")
			}
			p = q + l
		case c == 'i':
			_, q, err := scanInt(b, p)
			if err != nil {
				return 0, err
			}
			p = q
		case c == 'l':
			stack = append(stack, 'l')
			p++
			continue
		case c == 'd':
			stack = append(stack, 'k')
			p++
			continue
		default:
			return 0, unexpected(c, p)
		}
		// A value ended at p.
		if len(stack) == 0 {
			return p, nil
		}
		switch top := &stack[len(stack)-1]; *top {
		case 'k':
			*top = 'v'
		case 'v':
			*top = 'k'
			if cnt != nil {
				cnt.pairs++
			}
		case 'l':
			if cnt != nil {
				cnt.items++
			}
		}
	}
}
