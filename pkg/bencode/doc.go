// Package bencode is rtpkit's codec for rtpengine's "ng" control protocol
// documents: bencode (and, through [FromJSON] and [ToJSON], JSON) for
// untrusted input such as UDP datagrams from the network.
//
// A document decodes into a [Value], a small tagged struct: strings,
// int64 integers, lists, and dictionaries that keep their pairs in the
// order they were written. rtpengine neither requires sorted keys on input
// nor sorts them on output (a success reply ends with "result"), so [Encode]
// writes dictionaries in stored order too.
//
//	req, err := bencode.Decode(body, bencode.Limits{})
//	cmd, _ := req.GetString("command")
//	flags, _ := req.Get("flags")
//	list, _ := flags.StringList()
//
//	reply := bencode.NewDict()
//	reply.Set("sdp", bencode.Str(sdp)).Set("result", bencode.Str("ok"))
//	out := reply.AppendTo(buf[:0])
//
// Decoding is strict about the format and bounded by [Limits] (depth, size,
// string length, element count): every problem is reported as a
// *[DecodeError] carrying the byte offset and wrapping one sentinel such as
// [ErrSyntax] or [ErrIncomplete]. [Split] finds the end of one value in a
// stream without decoding it. Decoding uses no reflection and costs a
// handful of allocations per document.
//
// Compared with rtpengine's own decoder (daemon/bencode.c), this one is
// stricter on integers: like rtpengine it rejects leading zeros ("i03e"),
// but it also rejects what rtpengine's strtoll reads, namely "i-0e",
// "i+1e", "i-03e", "i 1e" and out-of-range values (which strtoll clamps).
// It is as strict as rtpengine on string lengths. Duplicate dictionary keys
// are accepted and the first occurrence wins, which is what rtpengine's
// lookup returns.
package bencode
