package bencode

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// FromJSON converts a JSON document (ng accepts a JSON object in place of a
// bencode dictionary) into a Value, applying lim like [Decode]:
//
//   - objects become dictionaries in the order the members are written;
//     for duplicate member names the first wins, as in Decode;
//   - arrays become lists; strings become strings;
//   - integer numbers in the int64 range become integers; any other number
//     (fraction, exponent, out of range) becomes the string of the number as
//     written, e.g. "1.5" or "1e3";
//   - true and false become the integers 1 and 0: newer rtpengine, which
//     reads JSON natively, counts booleans as integers;
//   - null means "absent": an object member or array element that is null
//     is left out; a null document is ErrSyntax.
//
// Exactly one JSON value is allowed; anything but white space after it is
// ErrTrailing.
func FromJSON(b []byte, lim Limits) (Value, error) {
	lim = lim.withDefaults()
	if len(b) > lim.MaxSize {
		return Value{}, errAt(lim.MaxSize, ErrTooLarge, "document exceeds MaxSize")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	j := jsonDecoder{dec: dec, lim: lim, size: len(b)}
	tok, err := j.token()
	if err != nil {
		return Value{}, err
	}
	v, present, err := j.value(tok, 0)
	if err != nil {
		return Value{}, err
	}
	if !present {
		return Value{}, errAt(0, ErrSyntax, "null document")
	}
	end := int(dec.InputOffset())
	if _, err := dec.Token(); err != io.EOF {
		return Value{}, errAt(end, ErrTrailing, "")
	}
	return v, nil
}

type jsonDecoder struct {
	dec   *json.Decoder
	lim   Limits
	size  int
	elems int
}

// token returns the next JSON token, mapping encoding/json's errors onto the
// package's sentinels.
func (j *jsonDecoder) token() (json.Token, error) {
	tok, err := j.dec.Token()
	if err == nil {
		return tok, nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, errAt(j.size, ErrIncomplete, "")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return nil, errAt(int(se.Offset), ErrSyntax, se.Error())
	}
	return nil, errAt(int(j.dec.InputOffset()), ErrSyntax, err.Error())
}

// value converts the JSON value that starts with tok; present is false for
// null.
func (j *jsonDecoder) value(tok json.Token, depth int) (v Value, present bool, err error) {
	off := int(j.dec.InputOffset())
	j.elems++
	if j.elems > j.lim.MaxElements {
		return Value{}, false, errAt(off, ErrTooLarge, "too many elements")
	}
	switch t := tok.(type) {
	case json.Delim:
		if t != '{' && t != '[' {
			return Value{}, false, errAt(off, ErrSyntax, "unexpected "+t.String())
		}
		if depth >= j.lim.MaxDepth {
			return Value{}, false, errAt(off, ErrDepth, "")
		}
		if t == '{' {
			v, err = j.object(depth + 1)
		} else {
			v, err = j.array(depth + 1)
		}
		return v, err == nil, err
	case string:
		if len(t) > j.lim.MaxStringLen {
			return Value{}, false, errAt(off, ErrTooLarge, "string length exceeds limit")
		}
		return Str(t), true, nil
	case json.Number:
		return numberValue(string(t)), true, nil
	case bool:
		if t {
			return Int(1), true, nil
		}
		return Int(0), true, nil
	case nil:
		return Value{}, false, nil
	}
	return Value{}, false, errAt(off, ErrSyntax, "unexpected JSON token")
}

func (j *jsonDecoder) object(depth int) (Value, error) {
	var pairs []Pair
	var keys keySet
	for {
		tok, err := j.token()
		if err != nil {
			return Value{}, err
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			break
		}
		key, ok := tok.(string)
		if !ok {
			return Value{}, errAt(int(j.dec.InputOffset()), ErrSyntax, "object key is not a string")
		}
		if len(key) > j.lim.MaxStringLen {
			return Value{}, errAt(int(j.dec.InputOffset()), ErrTooLarge, "string length exceeds limit")
		}
		tok, err = j.token()
		if err != nil {
			return Value{}, err
		}
		v, present, err := j.value(tok, depth)
		if err != nil {
			return Value{}, err
		}
		if present && keys.add(pairs, key) {
			pairs = append(pairs, Pair{Key: key, Value: v})
		}
	}
	return Value{Kind: KindDict, Dict: pairs}, nil
}

func (j *jsonDecoder) array(depth int) (Value, error) {
	var items []Value
	for {
		tok, err := j.token()
		if err != nil {
			return Value{}, err
		}
		if d, ok := tok.(json.Delim); ok && d == ']' {
			break
		}
		v, present, err := j.value(tok, depth)
		if err != nil {
			return Value{}, err
		}
		if present {
			items = append(items, v)
		}
	}
	return Value{Kind: KindList, List: items}, nil
}

// numberValue converts a JSON number literal: an integer in the int64 range
// becomes an integer, anything else the string as written.
func numberValue(s string) Value {
	if !strings.ContainsAny(s, ".eE") {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return Int(n)
		}
	}
	return Str(s)
}

// ToJSON returns v as compact JSON: dictionaries become objects with members
// in stored order, lists arrays, integers numbers and strings JSON strings.
// JSON strings cannot hold arbitrary bytes: each byte of a string that is
// not valid UTF-8 is written as U+FFFD. Strings are escaped exactly as
// encoding/json does with HTML escaping off (control characters, '"', '\',
// U+2028, U+2029).
func ToJSON(v Value) []byte {
	return appendJSON(make([]byte, 0, encodedLen(&v)+16), &v)
}

// AppendJSON appends the JSON form of v (see [ToJSON]) to dst.
func (v Value) AppendJSON(dst []byte) []byte { return appendJSON(dst, &v) }

func appendJSON(dst []byte, v *Value) []byte {
	switch v.Kind {
	case KindInt:
		return strconv.AppendInt(dst, v.Num, 10)
	case KindList:
		dst = append(dst, '[')
		for i := range v.List {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSON(dst, &v.List[i])
		}
		return append(dst, ']')
	case KindDict:
		dst = append(dst, '{')
		for i := range v.Dict {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, v.Dict[i].Key)
			dst = append(dst, ':')
			dst = appendJSON(dst, &v.Dict[i].Value)
		}
		return append(dst, '}')
	case KindString:
		return appendJSONString(dst, v.Str)
	}
	return append(dst, '"', '"')
}

func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&15])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
