package ngctl

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
)

// ngCommand is one command of rtpengine 10.5's ng protocol, as its
// statistics name it: the command itself and its lower-cased short name
// (the one controlstatistics' keys carry).
type ngCommand struct{ name, short string }

// rtpengineCommands are rtpengine 10.5's ng commands in the order its
// statistics list them. Each keeps its own request counters here, served
// or not, so that controlstatistics counts them as rtpengine does; the
// set is fixed, so clients cannot grow it.
var rtpengineCommands = []ngCommand{
	{"ping", "ping"}, {"offer", "offer"}, {"answer", "answer"}, {"delete", "delete"},
	{"query", "query"}, {"list", "list"}, {"start recording", "startrec"},
	{"stop recording", "stoprec"}, {"start forwarding", "startfwd"}, {"stop forwarding", "stopfwd"},
	{"block DTMF", "blkdtmf"}, {"unblock DTMF", "unblkdtmf"}, {"block media", "blkmedia"},
	{"unblock media", "unblkmedia"}, {"play media", "playmedia"}, {"stop media", "stopmedia"},
	{"play DTMF", "playdtmf"}, {"statistics", "stats"}, {"silence media", "slnmedia"},
	{"unsilence media", "unslnmedia"}, {"publish", "pub"}, {"subscribe request", "subreq"},
	{"subscribe answer", "subans"}, {"unsubscribe", "unsub"},
}

// knownCommand reports whether cmd is one of rtpengineCommands.
func knownCommand(cmd string) bool {
	for _, c := range rtpengineCommands {
		if c.name == cmd {
			return true
		}
	}
	return false
}

// otherCommand is the one entry of the per-command statistics under which
// every command rtpengine does not know is counted, so that what clients
// send cannot grow them. It never shows in the statistics reply.
const otherCommand = "other"

// account counts one answered request of cmd from src.
func (p *protocol) account(cmd string, src netip.Addr, d time.Duration, failed bool) {
	if p.metrics != nil {
		p.metrics.observe(cmd, d, failed)
	}
	if !knownCommand(cmd) {
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

// seconds formats d as rtpengine does its durations (seconds, six
// decimals).
func seconds(d time.Duration) string { return fmt.Sprintf("%.6f", d.Seconds()) }

// statistics builds the statistics reply (reference §1.10): rtpengine's
// seven members in its order, each with the keys rtpkit has a true value
// for. Left out (docs/compatibility.md): the packet, byte and error rates
// and totals, the userspace/kernel media counts, the zero-way and one-way
// stream counts, the graphite interval keys (totalcallsduration,
// min/maxmanagedsessions, the request rates), the MOS keys and the
// interfaces' port pools.
func (p *protocol) statistics() bencode.Value {
	st := p.engine.Stats()
	cur := bencode.DictCap(4)
	cur.Set("sessionsown", bencode.Int(int64(st.SessionsOwn)))
	cur.Set("sessionsforeign", bencode.Int(int64(st.SessionsForeign)))
	cur.Set("sessionstotal", bencode.Int(int64(st.SessionsOwn+st.SessionsForeign)))
	cur.Set("transcodedmedia", bencode.Int(int64(p.engine.TranscodedMedia())))

	tot := bencode.DictCap(14)
	// rtpengine's uptime is whole seconds, as a string.
	tot.Set("uptime", bencode.Str(strconv.FormatInt(int64(st.Uptime/time.Second), 10)))
	tot.Set("managedsessions", bencode.Int(st.Managed))
	tot.Set("rejectedsessions", bencode.Int(st.Rejected))
	tot.Set("timeoutsessions", bencode.Int(st.Timeout))
	tot.Set("silenttimeoutsessions", bencode.Int(st.SilentTimeout))
	tot.Set("finaltimeoutsessions", bencode.Int(st.FinalTimeout))
	tot.Set("offertimeoutsessions", bencode.Int(st.OfferTimeout))
	tot.Set("regularterminatedsessions", bencode.Int(st.Regular))
	tot.Set("forcedterminatedsessions", bencode.Int(st.Forced))
	tot.Set("avgcallduration", bencode.Str(seconds(st.AvgCallDuration)))
	tot.Set("totalcallsduration", bencode.Str(seconds(st.TotalCallsDuration)))
	tot.Set("totalcallsduration2", bencode.Str(fmt.Sprintf("%.6f", st.TotalCallsDuration2)))
	tot.Set("totalcallsduration_stddev", bencode.Str(seconds(st.CallsDurationStddev)))

	p.mu.Lock()
	// rtpengine's interval delays are those of graphite's last interval;
	// without graphite, rtpkit gives them over ng-ctl's life.
	interval := bencode.DictCap(3 * len(rtpengineCommands))
	for _, c := range rtpengineCommands {
		var least, worst, avg time.Duration
		if cs := p.cmds[c.name]; cs != nil && cs.n > 0 {
			least, worst, avg = cs.least, cs.worst, cs.total/time.Duration(cs.n)
		}
		interval.Set("min"+c.name+"delay", bencode.Str(seconds(least)))
		interval.Set("max"+c.name+"delay", bencode.Str(seconds(worst)))
		interval.Set("avg"+c.name+"delay", bencode.Str(seconds(avg)))
	}
	ctrl := bencode.DictCap(1 + len(rtpengineCommands))
	proxies := bencode.List()
	totals := make([]int64, len(rtpengineCommands))
	addrs := make([]netip.Addr, 0, len(p.proxies))
	for a := range p.proxies {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
	for _, a := range addrs {
		ps := p.proxies[a]
		d := bencode.DictCap(2 + 2*len(rtpengineCommands))
		d.Set("proxy", bencode.Str(a.String()))
		for i, c := range rtpengineCommands {
			d.Set(c.short+"count", bencode.Int(ps.count[c.name]))
			d.Set(c.short+"duration", bencode.Str(seconds(ps.duration[c.name])))
			totals[i] += ps.count[c.name]
		}
		d.Set("errorcount", bencode.Int(ps.errors))
		proxies.Append(d)
	}
	p.mu.Unlock()
	ctrl.Set("proxies", proxies)
	for i, c := range rtpengineCommands {
		ctrl.Set("total"+c.short+"count", bencode.Int(totals[i]))
	}

	stats := bencode.DictCap(7)
	stats.Set("currentstatistics", cur)
	stats.Set("totalstatistics", tot)
	stats.Set("intervalstatistics", interval)
	stats.Set("mos", bencode.NewDict())
	stats.Set("controlstatistics", ctrl)
	stats.Set("interfaces", bencode.List())
	stats.Set("transcoders", bencode.List())
	return ok(bencode.NewDict(bencode.Pair{Key: "statistics", Value: stats}))
}
