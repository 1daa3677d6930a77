package dtlscert

import "flag"

// RegisterFlags adds the certificate options of the daemons that need it
// (ng-ctl writes its fingerprint, rtp-fwd does the handshakes; both must
// be given the same values): --dtls-cert-dir, --dtls-cert, --dtls-key,
// and rtpengine's --dtls-cert-cipher and --dtls-signature.
func RegisterFlags(fs *flag.FlagSet, o *Options) {
	fs.StringVar(&o.Dir, "dtls-cert-dir", "", "`dir` where the node's generated DTLS certificate is kept (0700; the units give /var/lib/rtpkit/dtls, rtpctl up <state-dir>/dtls); without it or --dtls-cert, DTLS-SRTP is not offered")
	fs.StringVar(&o.CertFile, "dtls-cert", "", "PEM `file` of the DTLS certificate to use instead of a generated one (with --dtls-key)")
	fs.StringVar(&o.KeyFile, "dtls-key", "", "PEM `file` of the key of --dtls-cert")
	fs.StringVar(&o.Cipher, "dtls-cert-cipher", "prime256v1", "key of a generated DTLS certificate: `prime256v1` or rsa (rtpengine's dtls-cert-cipher)")
	fs.StringVar(&o.Signature, "dtls-signature", "sha-256", "signature of a generated DTLS certificate: `sha-256` or sha-1 (rtpengine's dtls-signature)")
}
