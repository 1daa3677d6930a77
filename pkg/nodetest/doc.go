// Package nodetest holds end-to-end tests of a whole rtpkit node, run the
// way operators run one (`rtpctl up` and the daemons' binaries), that
// belong to no single daemon: restart_test.go kills each daemon in turn
// with -9 while 100 calls carry RTP both ways and measures what the media
// and the calls see; longid_test.go sends offers with over-long Call-IDs
// and checks the node keeps working; busclosed_test.go checks that every
// daemon exits non-zero when the bus closes its connection for good. The
// package has no code outside its tests.
package nodetest
