package bencode

import "strconv"

// Sentinel errors. Every error returned by [Decode], [DecodePrefix], [Split]
// and [FromJSON] is a *[DecodeError] that wraps exactly one of them; test with
// errors.Is.
var (
	// ErrSyntax reports input that is not bencode (or not JSON, for
	// [FromJSON]) and cannot become valid by appending bytes.
	ErrSyntax error = &sentinel{msg: "bencode: syntax error"}

	// ErrInvalidInt reports a malformed integer: "ie", "i-e", "i-0e",
	// leading zeros ("i03e"), a '+' sign, a non-digit, or a value outside
	// the int64 range. errors.Is(err, ErrSyntax) is also true.
	ErrInvalidInt error = &sentinel{msg: "bencode: invalid integer", parent: ErrSyntax}

	// ErrInvalidLength reports a malformed string length prefix: leading
	// zeros ("03:abc") or a sign ("+3:abc", "-0:"). errors.Is(err, ErrSyntax)
	// is also true.
	ErrInvalidLength error = &sentinel{msg: "bencode: invalid string length", parent: ErrSyntax}

	// ErrIncomplete reports input that ends before the value does: it is a
	// proper prefix of some valid value and more bytes may complete it.
	ErrIncomplete error = &sentinel{msg: "bencode: incomplete value"}

	// ErrTrailing reports bytes after a complete value where exactly one
	// value was expected.
	ErrTrailing error = &sentinel{msg: "bencode: trailing data after value"}

	// ErrDepth reports lists and dictionaries nested deeper than
	// [Limits.MaxDepth].
	ErrDepth error = &sentinel{msg: "bencode: nesting too deep"}

	// ErrTooLarge reports input over [Limits.MaxSize], a string over
	// [Limits.MaxStringLen], or more values than [Limits.MaxElements].
	ErrTooLarge error = &sentinel{msg: "bencode: value too large"}
)

// sentinel is an error value that may also match a more general parent
// sentinel, so ErrInvalidInt is an ErrSyntax too.
type sentinel struct {
	msg    string
	parent error
}

func (s *sentinel) Error() string { return s.msg }

// Is reports whether target is the parent of s (errors.Is checks identity
// with s itself before calling this).
func (s *sentinel) Is(target error) bool { return s.parent != nil && target == s.parent }

// DecodeError describes why input was rejected and where. Use errors.Is with
// the sentinels (ErrSyntax, ErrIncomplete, ...) to classify it and errors.As
// to read the offset.
type DecodeError struct {
	// Offset is the byte offset in the input at which the problem was
	// detected; for ErrIncomplete it is the length of the input.
	Offset int
	// Err is one of the package's sentinel errors.
	Err error
	// Reason is a short human-readable detail, possibly empty.
	Reason string
}

// Error returns e.g. "bencode: invalid integer: leading zero at offset 5".
func (e *DecodeError) Error() string {
	s := e.Err.Error()
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s + " at offset " + strconv.Itoa(e.Offset)
}

// Unwrap returns the sentinel error.
func (e *DecodeError) Unwrap() error { return e.Err }

func errAt(off int, kind error, reason string) error {
	return &DecodeError{Offset: off, Err: kind, Reason: reason}
}
