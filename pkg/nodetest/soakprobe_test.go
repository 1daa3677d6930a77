package nodetest

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// soakProc is a process the soak watches: a daemon of a node (found as a
// child of the node's rtpctl up), or a server with a pid of its own.
type soakProc struct {
	name   string
	parent int        // rtpctl up's pid, for daemons
	comm   string     // the daemon's command name
	pid    func() int // for servers
}

// pidOf finds the process's pid now (0: not running).
func (p soakProc) pidOf() int {
	if p.pid != nil {
		return p.pid()
	}
	for _, pid := range testutil.Children(p.parent) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if err == nil && strings.TrimSpace(string(b)) == p.comm {
			return pid
		}
	}
	return 0
}

// procFigures reads the fds and RSS (KiB) of pid; -1 when unknown.
func procFigures(pid int) (fds, rssKB int) {
	fds, rssKB = -1, -1
	if pid == 0 {
		return
	}
	if ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd"); err == nil {
		fds = len(ents)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			rssKB, _ = strconv.Atoi(f[1])
		}
	}
	return
}

// portFigures are portd's port counts summed over its addresses.
type portFigures struct {
	Used        int `json:"used"`
	Quarantined int `json:"quarantined"`
	LeasedPairs int `json:"leased_pairs"`
	InCallPairs int `json:"in_call_pairs"`
	Sockets     int `json:"sockets"`
}

// soakSample is the node at one moment of the soak. Figures that could
// not be read (the bus or Redis away) are -1.
type soakSample struct {
	Label      string         `json:"label"`
	Elapsed    string         `json:"elapsed"`
	LiveCalls  int            `json:"live_calls"` // held up by the client
	NodeCalls  int            `json:"node_calls"` // the active node's own records
	StateMsgs  int64          `json:"node_state_msgs"`
	StateBytes int64          `json:"node_state_bytes"`
	RedisKeys  map[string]int `json:"redis_keys"` // by database
	Ports      *portFigures   `json:"ports,omitempty"`
	FDs        map[string]int `json:"fds"`
	RSSKB      map[string]int `json:"rss_kib"`
	PIDs       map[string]int `json:"pids"`
}

// soakProbe reads the figures of the node, its standby and their servers.
type soakProbe struct {
	procs   []soakProc
	aBus    *bus.Conn
	aState  *nodestate.Store
	aCalls  *nodestate.Table[nodestate.Call]
	bCalls  *nodestate.Table[nodestate.Call]
	stream  string
	redisDB map[string]*redis.Client
	cancels []context.CancelFunc
}

func (p *soakProbe) sample(label string, elapsed time.Duration, live int) soakSample {
	s := soakSample{Label: label, Elapsed: elapsed.Round(time.Second).String(), LiveCalls: live, NodeCalls: -1,
		StateMsgs: -1, StateBytes: -1, RedisKeys: map[string]int{},
		FDs: map[string]int{}, RSSKB: map[string]int{}, PIDs: map[string]int{}}
	for _, pr := range p.procs {
		pid := pr.pidOf()
		s.PIDs[pr.name] = pid
		s.FDs[pr.name], s.RSSKB[pr.name] = procFigures(pid)
	}
	// Each query has its own time: one that hangs (its server away) must
	// not cost the others theirs.
	ctx := func() context.Context {
		c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		p.cancels = append(p.cancels, cancel)
		return c
	}
	defer func() {
		for _, c := range p.cancels {
			c()
		}
		p.cancels = p.cancels[:0]
	}()
	s.StateMsgs, s.StateBytes = p.stateSize(ctx())
	if own, err := ownCalls(ctx(), p.aCalls, false); err == nil {
		s.NodeCalls = len(own)
	}
	for db, c := range p.redisDB {
		s.RedisKeys[db] = -1
		if n, err := c.DBSize(ctx()).Result(); err == nil {
			s.RedisKeys[db] = int(n)
		}
	}
	if pf, err := p.ports(ctx()); err == nil {
		s.Ports = &pf
	}
	return s
}

// stateSize is the message count and bytes of the active node's state
// bucket's stream.
func (p *soakProbe) stateSize(ctx context.Context) (int64, int64) {
	js, err := p.aBus.JetStream()
	if err != nil {
		return -1, -1
	}
	st, err := js.Stream(ctx, p.stream)
	if err != nil {
		return -1, -1
	}
	info, err := st.Info(ctx)
	if err != nil {
		return -1, -1
	}
	return int64(info.State.Msgs), int64(info.State.Bytes)
}

// ports asks the active node's portd for its ports.
func (p *soakProbe) ports(ctx context.Context) (portFigures, error) {
	r, err := bus.Request(ctx, p.aBus, portdapi.ListEndpoint, api.Empty{})
	if err != nil {
		return portFigures{}, err
	}
	f := portFigures{Sockets: r.Sockets}
	for _, i := range r.Interfaces {
		for _, a := range i.Addresses {
			f.Used += a.Used
			f.Quarantined += a.Quarantined
			f.LeasedPairs += a.Leased
			f.InCallPairs += a.Assigned
		}
	}
	return f, nil
}

// ownCalls lists the ids of a node's calls: its own (foreign false) or
// the ones it restored from another node (foreign true).
func ownCalls(ctx context.Context, tbl *nodestate.Table[nodestate.Call], foreign bool) (map[string]bool, error) {
	es, err := tbl.List(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, e := range es {
		if e.Value.Foreign == foreign {
			out[e.Value.ID] = true
		}
	}
	return out, nil
}

// standbyCompare is the active node's calls against the ones its standby
// restored.
type standbyCompare struct {
	Active   int      `json:"active_calls"`
	Restored int      `json:"standby_restored"`
	Matched  bool     `json:"matched"`
	Missing  []string `json:"missing_on_standby,omitempty"`
	Extra    []string `json:"extra_on_standby,omitempty"`
}

// compareStandby polls until the standby's restored calls are exactly the
// active node's own (at most timeout) and returns the last comparison.
func (p *soakProbe) compareStandby(timeout time.Duration) standbyCompare {
	deadline := time.Now().Add(timeout)
	var c standbyCompare
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		a, errA := ownCalls(ctx, p.aCalls, false)
		b, errB := ownCalls(ctx, p.bCalls, true)
		cancel()
		if errA == nil && errB == nil {
			c = standbyCompare{Active: len(a), Restored: len(b)}
			for id := range a {
				if !b[id] {
					c.Missing = append(c.Missing, id)
				}
			}
			for id := range b {
				if !a[id] {
					c.Extra = append(c.Extra, id)
				}
			}
			c.Matched = len(c.Missing) == 0 && len(c.Extra) == 0
			sort.Strings(c.Missing)
			sort.Strings(c.Extra)
			if c.Matched {
				return c
			}
		}
		if time.Now().After(deadline) {
			c.Missing, c.Extra = c.Missing[:min(len(c.Missing), 20)], c.Extra[:min(len(c.Extra), 20)]
			return c
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// figureLine is "name start/mid/end" of one per-process figure.
func figureLine(samples []soakSample, pick func(soakSample) map[string]int, names []string, unit string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "\n    %-18s", n)
		for _, s := range samples {
			fmt.Fprintf(&b, " %7d", pick(s)[n])
		}
		b.WriteString(" " + unit)
	}
	return b.String()
}
