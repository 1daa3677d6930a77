package nodestate

import (
	"encoding/json"
	"errors"
)

// The call record is written on every offer, answer and delete and read by
// every process that watches the node's calls, so its JSON is encoded and
// decoded by hand rather than through reflection: the encoder in
// callencode.go, the decoder in calldecode.go over the JSON reader of
// jsondecode.go, and their entry points here. The encoder writes
// exactly the bytes encoding/json writes for a Call; the decoder handles
// the records this encoder writes and hands anything else (unknown or
// differently cased keys, null, escapes, non-ASCII text, numbers that are
// not plain integers) to encoding/json, so both give the same result for
// every input.

// errSlowPath makes the fast decoder hand the record to encoding/json.
var errSlowPath = errors.New("nodestate: record needs encoding/json")

// marshalCall returns c's JSON, identical to json.Marshal(c).
func marshalCall(c *Call) ([]byte, error) {
	b, ok := appendCall(make([]byte, 0, 2048), c)
	if !ok {
		return json.Marshal(c)
	}
	return b, nil
}

// unmarshalCall decodes data into c as json.Unmarshal(data, c) would, with c
// the zero Call.
func unmarshalCall(data []byte, c *Call) error {
	d := decoder{b: data, s: string(data)}
	var v Call
	if err := d.call(&v); err == nil {
		d.space()
		if d.i == len(d.b) {
			*c = v
			return nil
		}
	}
	return json.Unmarshal(data, c)
}
