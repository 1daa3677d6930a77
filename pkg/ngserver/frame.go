package ngserver

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// SplitCookie splits one ng message (a UDP datagram or an HTTP body) into
// its cookie and its document at the first space. ok is false when there is
// no space or the cookie would be empty (the message starts with a space):
// such messages are dropped. The cookie never contains a space; the
// document may be empty. Both slices alias msg.
func SplitCookie(msg []byte) (cookie, doc []byte, ok bool) {
	i := bytes.IndexByte(msg, ' ')
	if i <= 0 {
		return nil, nil, false
	}
	return msg[:i], msg[i+1:], true
}

// frame returns a new slice holding cookie, one space and reply.
func frame(cookie string, reply []byte) []byte {
	b := make([]byte, 0, len(cookie)+1+len(reply))
	b = append(b, cookie...)
	b = append(b, ' ')
	return append(b, reply...)
}

// errorReply builds an error reply document that the transport produces
// itself (the handler never saw the request), in JSON when doc looks like
// JSON and in bencode otherwise, with rtpengine's error shape.
func errorReply(doc []byte, reason string) []byte {
	if len(doc) > 0 && doc[0] == '{' {
		r, _ := json.Marshal(reason) // a string always marshals
		b := append([]byte(`{"result":"error","error-reason":`), r...)
		return append(b, '}')
	}
	b := []byte("d6:result5:error12:error-reason")
	b = strconv.AppendInt(b, int64(len(reason)), 10)
	b = append(b, ':')
	b = append(b, reason...)
	return append(b, 'e')
}
