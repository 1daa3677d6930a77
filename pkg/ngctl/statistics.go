package ngctl

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
)

// shortNames are the command abbreviations of controlstatistics.
var shortNames = map[string]string{"ping": "ping", "offer": "offer", "answer": "answer", "delete": "delete",
	"query": "query", "list": "list", "statistics": "stats"}

// otherCommand is the one entry of the per-command statistics under which
// every command ng-ctl does not serve is counted, so that what clients
// send cannot grow them.
const otherCommand = "other"

// account counts one answered request of cmd from src.
func (p *protocol) account(cmd string, src netip.Addr, d time.Duration, failed bool) {
	if p.metrics != nil {
		p.metrics.observe(cmd, d, failed)
	}
	if _, ok := shortNames[cmd]; !ok {
		cmd = otherCommand
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := p.proxies[src]
	if ps == nil {
		ps = &proxyStats{count: map[string]int64{}, duration: map[string]time.Duration{}}
		p.proxies[src] = ps
	}
	ps.count[cmd]++
	ps.duration[cmd] += d
	if failed {
		ps.errors++
	}
	cs := p.cmds[cmd]
	if cs == nil {
		cs = &cmdStats{least: d}
		p.cmds[cmd] = cs
	}
	cs.n++
	cs.total += d
	cs.least = min(cs.least, d)
	cs.worst = max(cs.worst, d)
}

// seconds formats d as rtpengine does (seconds, six decimals).
func seconds(d time.Duration) string { return fmt.Sprintf("%.6f", d.Seconds()) }

// statistics builds the statistics reply (reference §1.10).
func (p *protocol) statistics() bencode.Value {
	st := p.engine.Stats()
	cur := bencode.NewDict()
	cur.Set("sessionsown", bencode.Int(int64(st.SessionsOwn)))
	cur.Set("sessionsforeign", bencode.Int(int64(st.SessionsForeign)))
	cur.Set("sessionstotal", bencode.Int(int64(st.SessionsOwn+st.SessionsForeign)))
	cur.Set("transcodedmedia", bencode.Int(0))
	for _, k := range []string{"packetrate", "byterate", "errorrate"} {
		for _, suf := range []string{"", "_user", "_kernel"} {
			cur.Set(k+suf, bencode.Int(0))
		}
	}
	cur.Set("media_userspace", bencode.Int(0))
	cur.Set("media_kernel", bencode.Int(0))
	cur.Set("media_mixed", bencode.Int(0))

	tot := bencode.NewDict()
	tot.Set("uptime", bencode.Str(seconds(st.Uptime)))
	tot.Set("managedsessions", bencode.Int(st.Managed))
	tot.Set("rejectedsessions", bencode.Int(st.Rejected))
	tot.Set("timeoutsessions", bencode.Int(st.Timeout))
	tot.Set("silenttimeoutsessions", bencode.Int(st.SilentTimeout))
	tot.Set("finaltimeoutsessions", bencode.Int(st.FinalTimeout))
	tot.Set("offertimeoutsessions", bencode.Int(st.OfferTimeout))
	tot.Set("regularterminatedsessions", bencode.Int(st.Regular))
	tot.Set("forcedterminatedsessions", bencode.Int(st.Forced))
	for _, k := range []struct {
		name string
		v    uint64
	}{{"relayedpackets", st.RelayedPackets}, {"relayedpacketerrors", st.RelayedErrors}, {"relayedbytes", st.RelayedBytes}} {
		tot.Set(k.name, bencode.Int(int64(k.v)))
		tot.Set(k.name+"_user", bencode.Int(int64(k.v)))
		tot.Set(k.name+"_kernel", bencode.Int(0))
	}
	tot.Set("zerowaystreams", bencode.Int(0))
	tot.Set("onewaystreams", bencode.Int(0))
	tot.Set("avgcallduration", bencode.Str(seconds(st.AvgCallDuration)))
	tot.Set("totalcallsduration", bencode.Str(seconds(st.TotalCallsDuration)))
	tot.Set("totalcallsduration2", bencode.Str("0.000000"))
	tot.Set("totalcallsduration_stddev", bencode.Str("0.000000"))

	p.mu.Lock()
	interval := bencode.NewDict()
	names := make([]string, 0, len(p.cmds))
	for c := range p.cmds {
		if c != otherCommand { // rtpengine's layout names served commands only
			names = append(names, c)
		}
	}
	sort.Strings(names)
	for _, c := range names {
		cs := p.cmds[c]
		interval.Set("min"+c+"delay", bencode.Str(seconds(cs.least)))
		interval.Set("max"+c+"delay", bencode.Str(seconds(cs.worst)))
		interval.Set("avg"+c+"delay", bencode.Str(seconds(cs.total/time.Duration(cs.n))))
		interval.Set(c+"requestrate", bencode.Str(seconds(0)))
	}
	ctrl := bencode.NewDict()
	proxies := bencode.List()
	totals := map[string]int64{}
	addrs := make([]netip.Addr, 0, len(p.proxies))
	for a := range p.proxies {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
	for _, a := range addrs {
		ps := p.proxies[a]
		d := bencode.NewDict(bencode.Pair{Key: "proxy", Value: bencode.Str(a.String())})
		for _, c := range []string{"ping", "offer", "answer", "delete", "query", "list", "statistics"} {
			short := shortNames[c]
			d.Set(short+"count", bencode.Int(ps.count[c]))
			d.Set(short+"duration", bencode.Str(seconds(ps.duration[c])))
			totals[short] += ps.count[c]
		}
		d.Set("errorcount", bencode.Int(ps.errors))
		proxies.Append(d)
	}
	p.mu.Unlock()
	ctrl.Set("proxies", proxies)
	for _, c := range []string{"ping", "offer", "answer", "delete", "query", "list", "stats"} {
		ctrl.Set("total"+c+"count", bencode.Int(totals[c]))
	}

	stats := bencode.NewDict()
	stats.Set("currentstatistics", cur)
	stats.Set("totalstatistics", tot)
	stats.Set("intervalstatistics", interval)
	stats.Set("mos", bencode.NewDict())
	stats.Set("controlstatistics", ctrl)
	stats.Set("interfaces", bencode.List())
	stats.Set("transcoders", bencode.List())
	return ok(bencode.NewDict(bencode.Pair{Key: "statistics", Value: stats}))
}
