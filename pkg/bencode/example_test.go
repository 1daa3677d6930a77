package bencode_test

import (
	"bytes"
	"fmt"

	"github.com/rtpkit/rtpkit/pkg/bencode"
)

func Example() {
	datagram := []byte("5323_1 d7:command4:list5:limit2:105:flagsl3:one3:twoee")
	cookie, doc, _ := bytes.Cut(datagram, []byte(" "))

	req, err := bencode.Decode(doc, bencode.Limits{})
	if err != nil {
		fmt.Println("Could not decode bencode dictionary:", err)
		return
	}
	cmd, _ := req.GetString("command")
	limit, _ := req.GetInt("limit") // a digit string is accepted too
	fv, _ := req.Get("flags")
	flags, _ := fv.StringList()
	fmt.Println(cmd, limit, flags)

	reply := bencode.NewDict()
	reply.Set("calls", bencode.Strs("c1", "c2"))
	reply.Set("result", bencode.Str("ok")) // result goes last
	out := reply.AppendTo(append(cookie, ' '))
	fmt.Printf("%s\n", out)
	// Output:
	// list 10 [one two]
	// 5323_1 d5:callsl2:c12:c2e6:result2:oke
}

func ExampleSplit() {
	stream := []byte("d7:command4:pinged7:comm")
	n, err := bencode.Split(stream)
	fmt.Println(n, err)
	_, err = bencode.Split(stream[n:])
	fmt.Println(err)
	// Output:
	// 17 <nil>
	// bencode: incomplete value at offset 7
}

func ExampleFromJSON() {
	v, err := bencode.FromJSON([]byte(`{"command":"offer","ptime":20,"debug":true,"x":null}`), bencode.Limits{})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%v\n%s\n", v, bencode.ToJSON(v))
	// Output:
	// {"command": "offer", "ptime": 20, "debug": 1}
	// {"command":"offer","ptime":20,"debug":1}
}
