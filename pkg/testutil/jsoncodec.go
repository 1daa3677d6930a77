package testutil

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// CheckJSONCodec checks a hand-written JSON codec against encoding/json on
// v: encode must write exactly json.Marshal's bytes, and decode must read
// those bytes as json.Unmarshal into a zero T does (the same value, an
// error or not). It returns the encoded bytes.
func CheckJSONCodec[T any](t testing.TB, v T, encode func(*T) ([]byte, error), decode func([]byte) (T, error)) []byte {
	t.Helper()
	want, err := json.Marshal(&v)
	if err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	got, err := encode(&v)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%+v:\nencoded  %s (%v)\nencoding/json %s", v, got, err, want)
	}
	a, errA := decode(got)
	var b T
	errB := json.Unmarshal(got, &b)
	if (errA == nil) != (errB == nil) || !reflect.DeepEqual(a, b) {
		t.Fatalf("%s decodes differently:\ncodec %+v (%v)\nencoding/json %+v (%v)", got, a, errA, b, errB)
	}
	return got
}
