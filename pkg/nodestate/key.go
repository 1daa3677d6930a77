package nodestate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// MaxIDLen is the longest record id (a SIP Call-ID) node state takes, in
// bytes. ng-ctl refuses longer Call-IDs with an ng error and redis-sync
// skips longer ones it finds in Redis; the tables refuse them too.
const MaxIDLen = 1024

// ErrIDTooLong is a record id beyond MaxIDLen.
var ErrIDTooLong = fmt.Errorf("id longer than %d bytes", MaxIDLen)

// keyTokenLen is the length of a key token: 32 hex digits, 128 bits of
// SHA-256, so that two ids sharing a token is out of the question.
const keyTokenLen = 32

// KeyToken is the key token of an id: the first 128 bits of its SHA-256 in
// lower-case hex. Whatever the id (up to MaxIDLen bytes of anything), the
// token is one valid key token of fixed length, so a key, and the bus
// subject that writes it, stay far below the bus's control line limit.
// The id itself lives in the record (and in a delete marker's body): a
// key is never mapped back to an id.
func KeyToken(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:keyTokenLen/2])
}

// checkID refuses ids node state does not take.
func checkID(id string) error {
	if len(id) > MaxIDLen {
		return fmt.Errorf("record id of %d bytes: %w", len(id), ErrIDTooLong)
	}
	return nil
}

// errNoID is a stored record, or delete marker, that does not say its id.
var errNoID = errors.New("record without an id")

// idPrefix is how every record the encoder writes starts its id field
// (after `{"schema":N`).
var idPrefix = []byte(`,"id":"`)

// recordID returns the id a stored record (JSON with an "id" field)
// names. A record as the encoder wrote it is read without decoding it;
// anything else goes through encoding/json.
func recordID(raw []byte) (string, error) {
	if bytes.HasPrefix(raw, []byte(`{"schema":`)) {
		if i := bytes.Index(raw, idPrefix); i > 0 && i < 32 {
			d := decoder{b: raw, i: i + len(idPrefix) - 1}
			if s, err := d.str(); err == nil {
				return s, nil
			}
		}
	}
	var r struct {
		ID *string `json:"id"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return "", fmt.Errorf("read record id: %w", err)
	}
	if r.ID == nil {
		return "", errNoID
	}
	return *r.ID, nil
}

// entryID returns the id of a stored record or delete marker (whose body
// is the id) and checks that key token tok is that id's.
func entryID(tok string, deleted bool, raw []byte) (string, error) {
	var id string
	if deleted {
		if len(raw) == 0 {
			return "", errNoID
		}
		id = string(raw)
	} else {
		var err error
		if id, err = recordID(raw); err != nil {
			return "", err
		}
	}
	if KeyToken(id) != tok {
		return "", fmt.Errorf("record id %.64q does not match its key token %s", id, tok)
	}
	return id, nil
}
