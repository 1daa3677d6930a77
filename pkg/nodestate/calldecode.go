package nodestate

import "net/netip"

// The call record's decoder: the fields of a Call and of its legs,
// medias, payload types and streams, read with the JSON reader of
// jsondecode.go (see callcodec.go).

func (d *decoder) call(c *Call) error {
	return d.object(func(k []byte) (n int, err error) {
		switch string(k) {
		case "schema":
			n = 0
			c.Schema, err = d.intField()
		case "id":
			n = 1
			c.ID, err = d.str()
		case "owner":
			n = 2
			c.Owner, err = d.str()
		case "foreign":
			n = 3
			c.Foreign, err = d.boolean()
		case "partition":
			n = 4
			c.Partition, err = d.str()
		case "source":
			n = 5
			c.Source, err = d.str()
		case "created":
			n = 6
			c.Created, err = d.timeField()
		case "last_signal":
			n = 7
			c.LastSignal, err = d.timeField()
		case "delete_at":
			n = 8
			c.DeleteAt, err = d.timeField()
		case "legs":
			n = 9
			c.Legs = make([]Leg, 0, 2)
			err = d.array(func() error {
				c.Legs = append(c.Legs, Leg{})
				return d.leg(&c.Legs[len(c.Legs)-1])
			})
		default:
			err = errSlowPath
		}
		return n, err
	})
}

func (d *decoder) leg(l *Leg) error {
	return d.object(func(k []byte) (n int, err error) {
		switch string(k) {
		case "id":
			n = 0
			l.ID, err = d.intField()
		case "tag":
			n = 1
			l.Tag, err = d.str()
		case "label":
			n = 2
			l.Label, err = d.str()
		case "via_branch":
			n = 3
			l.ViaBranch, err = d.str()
		case "peer":
			n = 4
			l.Peer, err = d.intField()
		case "family":
			n = 5
			l.Family, err = d.intField()
		case "interface":
			n = 6
			l.Interface, err = d.str()
		case "sdp":
			n = 7
			l.SDP, err = d.boolean()
		case "created":
			n = 8
			l.Created, err = d.timeField()
		case "origin":
			n = 10
			l.Origin = &Origin{}
			err = d.origin(l.Origin)
		case "medias":
			n = 9
			l.Medias = make([]Media, 0, 1)
			err = d.array(func() error {
				l.Medias = append(l.Medias, Media{})
				return d.media(&l.Medias[len(l.Medias)-1])
			})
		default:
			err = errSlowPath
		}
		return n, err
	})
}

func (d *decoder) origin(o *Origin) error {
	if d.next() != '{' {
		return errSlowPath // null, or not an object
	}
	return d.object(func(k []byte) (n int, err error) {
		switch string(k) {
		case "username":
			n = 0
			o.Username, err = d.str()
		case "session_id":
			n = 1
			o.SessionID, err = d.str()
		case "session_name":
			n = 2
			o.SessionName, err = d.str()
		case "pinned":
			n = 3
			o.Pinned, err = d.intField()
		case "version":
			n = 4
			o.Version, err = d.uint64Field()
		case "content":
			n = 5
			o.Content, err = d.uint64Field()
		default:
			err = errSlowPath
		}
		return n, err
	})
}

func (d *decoder) media(m *Media) error {
	return d.object(func(k []byte) (n int, err error) {
		switch string(k) {
		case "index":
			n = 0
			m.Index, err = d.intField()
		case "type":
			n = 1
			m.Type, err = d.str()
		case "protocol":
			n = 2
			m.Protocol, err = d.str()
		case "interface":
			n = 3
			m.Interface, err = d.str()
		case "direction":
			n = 4
			m.Direction, err = d.str()
		case "rtcp_mux":
			n = 5
			m.RTCPMux, err = d.boolean()
		case "payload_types":
			n = 6
			m.PayloadTypes = make([]PayloadType, 0, 4)
			err = d.array(func() error {
				m.PayloadTypes = append(m.PayloadTypes, PayloadType{})
				return d.payloadType(&m.PayloadTypes[len(m.PayloadTypes)-1])
			})
		case "streams":
			n = 7
			m.Streams = make([]Stream, 0, 2)
			err = d.array(func() error {
				m.Streams = append(m.Streams, Stream{})
				return d.stream(&m.Streams[len(m.Streams)-1])
			})
		case "alt":
			n = 18
			m.Alt = make([]Stream, 0, 2)
			err = d.array(func() error {
				m.Alt = append(m.Alt, Stream{})
				return d.stream(&m.Alt[len(m.Alt)-1])
			})
		case "flags":
			n = 8
			m.Flags = []string{}
			err = d.array(func() error {
				s, err := d.str()
				m.Flags = append(m.Flags, s)
				return err
			})
		case "mid":
			n = 9
			m.Mid, err = d.str()
		case "ptime":
			n = 10
			m.Ptime, err = d.intField()
		case "key":
			n = 11
			m.Key, err = d.addrPort()
		case "sdes_in":
			n = 12
			m.SDESIn, err = d.strings()
		case "sdes_out":
			n = 13
			m.SDESOut, err = d.strings()
		case "srtp_in_roc":
			n = 14
			m.SRTPInROC, err = d.uint32Field()
		case "srtp_out_roc":
			n = 15
			m.SRTPOutROC, err = d.uint32Field()
		case "ice":
			n = 16
			m.ICE = &ICE{}
			err = d.ice(m.ICE)
		case "dtls":
			n = 17
			m.DTLS = &DTLS{}
			err = d.dtls(m.DTLS)
		case "transcode":
			n = 19
			m.Transcode = &PayloadType{}
			err = d.payloadType(m.Transcode)
		default:
			err = errSlowPath
		}
		return n, err
	})
}

// strings reads an array of strings.
func (d *decoder) strings() ([]string, error) {
	out := []string{}
	err := d.array(func() error {
		s, err := d.str()
		out = append(out, s)
		return err
	})
	return out, err
}

func (d *decoder) payloadType(p *PayloadType) error {
	return d.object(func(k []byte) (n int, err error) {
		switch string(k) {
		case "pt":
			n = 0
			var v int64
			v, err = d.unsigned(255)
			p.PT = uint8(v)
		case "encoding":
			n = 1
			p.Encoding, err = d.str()
		case "clock":
			n = 2
			p.Clock, err = d.intField()
		case "params":
			n = 3
			p.Params, err = d.str()
		case "fmtp":
			n = 4
			p.Fmtp, err = d.str()
		default:
			err = errSlowPath
		}
		return n, err
	})
}

func (d *decoder) ice(c *ICE) error {
	return d.object(func(k []byte) (n int, err error) {
		switch string(k) {
		case "ufrag":
			n = 0
			c.Ufrag, err = d.str()
		case "pwd":
			n = 1
			c.Pwd, err = d.str()
		case "remote_ufrag":
			n = 2
			c.RemoteUfrag, err = d.str()
		case "remote_pwd":
			n = 3
			c.RemotePwd, err = d.str()
		case "controlling":
			n = 4
			c.Controlling, err = d.boolean()
		case "selected":
			n = 5
			c.Selected, err = d.addrPort()
		case "lite":
			n = 6
			c.Lite, err = d.boolean()
		case "trickle":
			n = 7
			c.Trickle, err = d.boolean()
		case "candidates":
			n = 8
			c.Candidates, err = d.addrPorts()
		case "rtcp_candidates":
			n = 9
			c.RTCPCandidates, err = d.addrPorts()
		default:
			err = errSlowPath
		}
		return n, err
	})
}

func (d *decoder) dtls(c *DTLS) error {
	return d.object(func(k []byte) (n int, err error) {
		switch string(k) {
		case "setup":
			n = 0
			c.Setup, err = d.str()
		case "fingerprint":
			n = 1
			c.Fingerprint, err = d.str()
		case "hash":
			n = 2
			c.Hash, err = d.str()
		case "key_in":
			n = 3
			c.KeyIn, err = d.str()
		case "key_out":
			n = 4
			c.KeyOut, err = d.str()
		default:
			err = errSlowPath
		}
		return n, err
	})
}

func (d *decoder) stream(s *Stream) error {
	return d.object(func(k []byte) (n int, err error) {
		switch string(k) {
		case "component":
			n = 0
			s.Component, err = d.intField()
		case "local":
			n = 1
			s.Local, err = d.addrPort()
		case "advertised":
			n = 2
			s.Advertised, err = d.addr()
		case "signalled":
			n = 3
			s.Signalled, err = d.addrPort()
		case "gen":
			n = 4
			s.Gen, err = d.uint64Field()
		case "learned":
			n = 5
			s.Learned, err = d.addrPort()
		default:
			err = errSlowPath
		}
		return n, err
	})
}

// addrPorts reads an array of endpoints.
func (d *decoder) addrPorts() ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	err := d.array(func() error {
		ap, err := d.addrPort()
		out = append(out, ap)
		return err
	})
	if err == nil && out == nil {
		out = []netip.AddrPort{}
	}
	return out, err
}
