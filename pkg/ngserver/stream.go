package ngserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/rtpkit/rtpkit/pkg/bencode"
)

// errNeedMore says that a stream's buffered bytes end inside a message.
var errNeedMore = errors.New("incomplete message")

// errStream is wrapped by every error that makes a TCP stream unusable.
var errStream = errors.New("ng stream")

// msgScan finds the first message in the buffered bytes of a TCP stream,
// resuming where the previous call stopped: the cookie's length once its
// space has arrived, and the document scanner's state. Every call must
// pass the same message from its start, grown by the bytes read since;
// reset starts over for the next message.
type msgScan struct {
	cl   int  // cookie length, or -1 while its space has not arrived
	kind byte // 'j' JSON, 'b' bencode, 0 not yet known
	ben  benScan
	js   jsonScan
	// examined counts the bytes stepped over (tests).
	examined int
}

func newMsgScan() *msgScan { return &msgScan{cl: -1} }

// reset prepares for the next message, keeping the scanners' storage.
func (s *msgScan) reset() {
	s.cl, s.kind = -1, 0
	s.ben = benScan{stack: s.ben.stack[:0]}
	s.js = jsonScan{stack: s.js.stack[:0]}
}

// split finds the first message in b. Leading whitespace (space, tab, CR,
// LF) is skipped: skip bytes of it may be discarded whatever err is. With
// err nil, the message is b[skip:skip+n] and its cookie is the first cl
// bytes of it, followed by one space and the document. err is errNeedMore
// when more bytes are needed (cl is then the cookie's length if its space
// has arrived, else 0), and an error wrapping errStream when the stream
// can never become valid: no space within [MaxCookieTCP] bytes, a document
// that is neither bencode nor a JSON object, or a message longer than
// maxMsg. After a message or an error, the next call starts a new message.
//
// The document is checked incrementally (benScan, jsonScan); bencode.Split
// or jsonEnd runs once, when the document has ended or turned out invalid,
// and gives the result, so each byte is examined a bounded number of times.
func (s *msgScan) split(b []byte, maxMsg int) (skip, cl, n int, err error) {
	for skip < len(b) && isSpace(b[skip]) {
		skip++
	}
	if skip > 0 {
		s.reset() // whitespace only comes before a message
	}
	s.examined += skip
	m := b[skip:]
	needMore := func(cl int) (int, int, int, error) {
		if len(m) > maxMsg {
			s.reset()
			return skip, cl, 0, fmt.Errorf("%w: message longer than %d bytes", errStream, maxMsg)
		}
		return skip, cl, 0, errNeedMore
	}
	if s.cl < 0 {
		w := m[:min(len(m), MaxCookieTCP)]
		s.examined += len(w) // bounded by MaxCookieTCP per read
		s.cl = bytes.IndexByte(w, ' ')
		if s.cl < 0 {
			if len(m) >= MaxCookieTCP {
				s.reset()
				return skip, 0, 0, fmt.Errorf("%w: no space after a cookie within %d bytes", errStream, MaxCookieTCP)
			}
			return needMore(0)
		}
	}
	cl = s.cl
	doc := m[cl+1:]
	if len(doc) == 0 {
		return needMore(cl)
	}
	if s.kind == 0 {
		s.kind = 'b'
		if doc[0] == '{' {
			s.kind = 'j'
		}
	}
	var v verdict
	if s.kind == 'j' {
		v = s.js.scan(doc, &s.examined)
	} else {
		v = s.ben.scan(doc, &s.examined)
	}
	if v == scanMore {
		return needMore(cl)
	}
	// The document ended or is invalid: the authoritative scanner decides,
	// once.
	s.examined += len(doc)
	var dn int
	if s.kind == 'j' {
		dn, err = jsonEnd(doc)
	} else {
		dn, err = bencode.Split(doc)
		if errors.Is(err, bencode.ErrIncomplete) {
			err = errNeedMore
		}
	}
	switch {
	case errors.Is(err, errNeedMore):
		// The incremental scanner should never stop early; if it did,
		// start it over next time rather than return a wrong verdict.
		k := s.cl
		s.reset()
		s.cl = k
		return needMore(cl)
	case err != nil:
		s.reset()
		return skip, cl, 0, fmt.Errorf("%w: document after cookie %q: %w", errStream, m[:min(cl, 64)], err)
	}
	s.reset()
	n = cl + 1 + dn
	if n > maxMsg {
		return skip, cl, 0, fmt.Errorf("%w: message of %d bytes, longer than %d", errStream, n, maxMsg)
	}
	return skip, cl, n, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// jsonEnd returns the length of the JSON object at the start of doc, or
// errNeedMore if doc ends inside it.
func jsonEnd(doc []byte) (int, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	var v skipJSON
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return 0, errNeedMore
		}
		return 0, fmt.Errorf("JSON: %w", err)
	}
	return int(dec.InputOffset()), nil
}

// skipJSON accepts any JSON value without keeping it; the decoder has
// validated its syntax before calling UnmarshalJSON.
type skipJSON struct{}

func (skipJSON) UnmarshalJSON([]byte) error { return nil }
