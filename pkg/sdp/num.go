package sdp

import "math"

// The helpers below parse numbers the way the C library functions used by
// rtpengine's SDP parser do, so that the same inputs are accepted: leading
// white space and a sign are allowed, conversion stops at the first
// non-digit, and "no digits" is reported separately from the value.

// isCSpace reports whether c is white space for the C library (isspace).
func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// scanDigits reads white space, an optional sign and decimal digits from s.
// It returns the magnitude (saturated at math.MaxUint64), whether a minus
// sign was read, and the number of bytes consumed; used is 0 when no digit
// was found.
func scanDigits(s string) (mag uint64, neg bool, used int) {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	overflow := false
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		d := uint64(s[i] - '0')
		if mag > (math.MaxUint64-d)/10 {
			overflow = true
		} else {
			mag = mag*10 + d
		}
		i++
	}
	if i == start {
		return 0, false, 0
	}
	if overflow {
		mag = math.MaxUint64
	}
	return mag, neg, i
}

// cStrtoul mirrors strtoul: the value (a negative number wraps around as
// in C) and the number of bytes consumed, 0 when nothing was converted.
func cStrtoul(s string) (uint64, int) {
	mag, neg, used := scanDigits(s)
	if used == 0 {
		return 0, 0
	}
	if neg && mag != math.MaxUint64 {
		mag = -mag
	}
	return mag, used
}

// cStrtol mirrors strtol (64-bit long): the value saturated at the int64
// limits and the number of bytes consumed, 0 when nothing was converted.
func cStrtol(s string) (int64, int) {
	mag, neg, used := scanDigits(s)
	if used == 0 {
		return 0, 0
	}
	if neg {
		if mag >= 1<<63 {
			return math.MinInt64, used
		}
		return -int64(mag), used
	}
	if mag > math.MaxInt64 {
		return math.MaxInt64, used
	}
	return int64(mag), used
}

// strToInt mirrors rtpengine's str_to_i: the whole of s is offered to
// strtoll; def is returned when nothing converts or the value does not fit
// an int32.
func strToInt(s string, def int) int {
	if len(s) == 0 {
		return def
	}
	v, used := cStrtol(s)
	if used == 0 || v > math.MaxInt32 || v < math.MinInt32 {
		return def
	}
	return int(v)
}

// cAtoi mirrors atoi for the values that matter here: the strtol value,
// clamped to the int32 range, 0 when nothing converts.
func cAtoi(s string) int {
	v, _ := cStrtol(s)
	if v > math.MaxInt32 {
		return math.MaxInt32
	}
	if v < math.MinInt32 {
		return math.MinInt32
	}
	return int(v)
}
