package bencode

import "strconv"

// Encode returns the bencoding of v, with dictionaries in their stored
// order. A decoded document re-encodes to the input bytes (minus any
// duplicate keys Decode dropped).
func Encode(v Value) []byte {
	return appendValue(make([]byte, 0, encodedLen(&v)), &v)
}

// AppendTo appends the bencoding of v to dst and returns the extended
// buffer. Kinds other than the four defined encode as the empty string.
func (v Value) AppendTo(dst []byte) []byte { return appendValue(dst, &v) }

// EncodedLen returns len(Encode(v)) without encoding.
func (v Value) EncodedLen() int { return encodedLen(&v) }

func appendValue(dst []byte, v *Value) []byte {
	switch v.Kind {
	case KindInt:
		dst = append(dst, 'i')
		dst = strconv.AppendInt(dst, v.Num, 10)
		return append(dst, 'e')
	case KindList:
		dst = append(dst, 'l')
		for i := range v.List {
			dst = appendValue(dst, &v.List[i])
		}
		return append(dst, 'e')
	case KindDict:
		dst = append(dst, 'd')
		for i := range v.Dict {
			dst = appendString(dst, v.Dict[i].Key)
			dst = appendValue(dst, &v.Dict[i].Value)
		}
		return append(dst, 'e')
	case KindString:
		return appendString(dst, v.Str)
	}
	return append(dst, '0', ':')
}

func appendString(dst []byte, s string) []byte {
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, ':')
	return append(dst, s...)
}

func encodedLen(v *Value) int {
	switch v.Kind {
	case KindInt:
		return 2 + intLen(v.Num)
	case KindList:
		n := 2
		for i := range v.List {
			n += encodedLen(&v.List[i])
		}
		return n
	case KindDict:
		n := 2
		for i := range v.Dict {
			k := len(v.Dict[i].Key)
			n += intLen(int64(k)) + 1 + k + encodedLen(&v.Dict[i].Value)
		}
		return n
	case KindString:
		return intLen(int64(len(v.Str))) + 1 + len(v.Str)
	}
	return 2
}

// intLen returns the number of bytes of n in decimal, sign included.
func intLen(n int64) int {
	l := 1
	u := uint64(n)
	if n < 0 {
		l++
		u = -u
	}
	for u >= 10 {
		u /= 10
		l++
	}
	return l
}
