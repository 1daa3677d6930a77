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

// splitStream finds the first message in b, the buffered bytes of a TCP
// stream. Leading whitespace (space, tab, CR, LF) is skipped: skip bytes of
// it may be discarded whatever err is. With err nil, the message is
// b[skip:skip+n] and its cookie is the first cl bytes of it, followed by one
// space and the document. err is errNeedMore when more bytes are needed (cl
// is then the cookie's length if its space has arrived, else 0), and an
// error wrapping errStream when the stream can never become valid: no space
// within [MaxCookieTCP] bytes, a document that is neither bencode nor a JSON
// object, or a message longer than maxMsg.
func splitStream(b []byte, maxMsg int) (skip, cl, n int, err error) {
	for skip < len(b) && isSpace(b[skip]) {
		skip++
	}
	m := b[skip:]
	needMore := func(cl int) (int, int, int, error) {
		if len(m) > maxMsg {
			return skip, cl, 0, fmt.Errorf("%w: message longer than %d bytes", errStream, maxMsg)
		}
		return skip, cl, 0, errNeedMore
	}
	cl = bytes.IndexByte(m[:min(len(m), MaxCookieTCP)], ' ')
	if cl < 0 {
		if len(m) >= MaxCookieTCP {
			return skip, 0, 0, fmt.Errorf("%w: no space after a cookie within %d bytes", errStream, MaxCookieTCP)
		}
		return needMore(0)
	}
	doc := m[cl+1:]
	if len(doc) == 0 {
		return needMore(cl)
	}
	var dn int
	if doc[0] == '{' {
		dn, err = jsonEnd(doc)
	} else {
		dn, err = bencode.Split(doc)
		if errors.Is(err, bencode.ErrIncomplete) {
			err = errNeedMore
		}
	}
	switch {
	case errors.Is(err, errNeedMore):
		return needMore(cl)
	case err != nil:
		return skip, cl, 0, fmt.Errorf("%w: document after cookie %q: %w", errStream, m[:min(cl, 64)], err)
	}
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
