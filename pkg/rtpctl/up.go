package rtpctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/busauth"
	"github.com/rtpkit/rtpkit/pkg/cli"
	"github.com/rtpkit/rtpkit/pkg/daemon"
	"github.com/rtpkit/rtpkit/pkg/embedbus"
	"github.com/rtpkit/rtpkit/pkg/metrics"
	"github.com/rtpkit/rtpkit/pkg/ngctl"
	"github.com/rtpkit/rtpkit/pkg/portd"
	"github.com/rtpkit/rtpkit/pkg/proctune"
	"github.com/rtpkit/rtpkit/pkg/redissync"
	"github.com/rtpkit/rtpkit/pkg/rtpfwd"
	"github.com/rtpkit/rtpkit/pkg/supervisor"
)

const upSummary = `Runs a whole rtpkit node in the foreground: an embedded NATS bus (JetStream,
loopback only) unless --nats-url names one, and the node's daemons as child
processes, restarted with back-off if they die. Takes every daemon option and
hands each daemon its own. SIGINT/SIGTERM stops the node; kill -9 takes the
children down with it.`

// daemonSpec is one daemon `rtpctl up` runs, in start order.
type daemonSpec struct {
	name string
	cfg  cli.Config
}

func nodeDaemons() []daemonSpec {
	return []daemonSpec{
		{"portd", &portd.Config{}},
		{"rtp-fwd", &rtpfwd.Config{}},
		{"ng-ctl", &ngctl.Config{}},
		{"redis-sync", &redissync.Config{}},
	}
}

// upOptions are the options of `rtpctl up` itself.
type upOptions struct {
	common     cli.Common
	natsListen string
	stateDir   string
	binDir     string
	ready      time.Duration
}

type upCmd struct {
	fs      *flag.FlagSet
	opts    upOptions
	daemons []daemonSpec
	members []member
	self    *flag.FlagSet
}

func newUpCmd() *upCmd {
	u := &upCmd{fs: cli.NewFlagSet("rtpctl up"), daemons: nodeDaemons()}
	u.self = flag.NewFlagSet("self", flag.ContinueOnError)
	u.opts.common.RegisterFlags(u.self)
	u.members = append(u.members, member{"rtpctl", u.self})
	for _, d := range u.daemons {
		fs := flag.NewFlagSet(d.name, flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		d.cfg.RegisterFlags(fs)
		u.members = append(u.members, member{d.name, fs})
	}
	union(u.fs, u.members)
	u.fs.StringVar(&u.opts.natsListen, "nats-listen", "127.0.0.1:4222", "`ADDR:PORT` of the embedded bus (loopback; port 0 picks one)")
	u.fs.StringVar(&u.opts.stateDir, "state-dir", "", "the node's persistent state `dir` (default: a temporary dir, removed at exit)")
	u.fs.StringVar(&u.opts.binDir, "bin-dir", "", "`dir` holding the daemon binaries (default: next to rtpctl, then PATH)")
	u.fs.DurationVar(&u.opts.ready, "ready-timeout", 10*time.Second, "how long each daemon gets to answer on the bus at start")
	return u
}

func (u *upCmd) memberFS(name string) *flag.FlagSet {
	for _, m := range u.members {
		if m.name == name {
			return m.fs
		}
	}
	return nil
}

func (u *upCmd) parse(args []string) error {
	if err := cli.Parse(u.fs, args); err != nil {
		return err
	}
	if u.fs.NArg() > 0 {
		return cli.Usagef("unexpected argument %q", u.fs.Arg(0))
	}
	if err := u.opts.common.Validate(); err != nil {
		return err
	}
	for _, d := range u.daemons {
		if err := d.cfg.Validate(); err != nil {
			return err
		}
	}
	return nil
}

func (u *upCmd) isSet(name string) bool {
	set := false
	u.fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// run brings the node up and keeps it up until ctx ends.
func (u *upCmd) run(ctx context.Context, stdout io.Writer, log *slog.Logger) (err error) {
	node := u.opts.common.NodeID
	stateDir := u.opts.stateDir
	if stateDir == "" {
		dir, err := os.MkdirTemp("", "rtpkit-"+node+"-")
		if err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
		stateDir = dir
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	runtimeDir := filepath.Join(stateDir, "run")
	if u.isSet("runtime-dir") {
		runtimeDir = u.memberFS("portd").Lookup("runtime-dir").Value.String()
	}
	if err := os.MkdirAll(runtimeDir, 0o700); err != nil {
		return fmt.Errorf("runtime dir: %w", err)
	}
	if u.opts.stateDir == "" && !u.isSet("runtime-dir") {
		// A throw-away node: the bpffs rtp-fwd may have mounted for its
		// fast path (<runtime-dir>/bpf) goes with it, and with it whatever
		// is pinned there (runs before the state dir is removed).
		defer func() { _ = unix.Unmount(filepath.Join(runtimeDir, "bpf"), unix.MNT_DETACH) }()
	}

	// The bus.
	natsURL := u.opts.common.Bus.URL
	busNote := "external"
	busOpts := u.opts.common.Bus
	overrides := map[string]string{"node-id": node, "runtime-dir": runtimeDir}
	if !u.isSet("nats-url") {
		keyDir := filepath.Join(stateDir, "bus")
		users, err := busUsers(keyDir, node)
		if err != nil {
			return err
		}
		srv, err := embedbus.Start(embedbus.Options{Listen: u.opts.natsListen, StoreDir: stateDir, Users: users}, log)
		if err != nil {
			return err
		}
		defer srv.Shutdown()
		natsURL = srv.URL()
		busNote = "embedded, nkeys in " + keyDir + "; JetStream store in " + filepath.Join(stateDir, "jetstream")
		busOpts.NkeyFile = busauth.KeyFile(keyDir, busauth.Operator)
		busOpts.CredsFile = ""
		overrides["nats-nkey-file"] = "" // each daemon gets its own, below
		overrides["nats-creds"] = ""
		if unlink, err := busauth.Advertise(natsURL, node, busOpts.NkeyFile); err != nil {
			log.Warn("rtpctl's client commands will need --nats-nkey-file", "key", busOpts.NkeyFile, "err", err)
		} else {
			defer unlink()
		}
	}
	busOpts.URL = natsURL
	overrides["nats-url"] = natsURL
	if !u.isSet("dtls-cert-dir") {
		overrides["dtls-cert-dir"] = filepath.Join(stateDir, "dtls")
	}
	conn, err := bus.Connect(ctx, busOpts, node, "rtpctl-up", log)
	if err != nil {
		return err
	}
	defer conn.Close()

	// The daemons, in order; each must answer on the bus before the next starts.
	sup := supervisor.New(log, supervisor.Options{ParentEnv: daemon.SupervisorEnv})
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if serr := sup.Stop(sctx); serr != nil && err == nil {
			err = serr
		}
	}()
	for _, d := range u.daemons {
		path, err := u.findBinary(d.name)
		if err != nil {
			return err
		}
		if _, ok := overrides["nats-nkey-file"]; ok {
			overrides["nats-nkey-file"] = busauth.KeyFile(filepath.Join(stateDir, "bus"), d.name)
		}
		args := childArgs(u.memberFS(d.name), overrides)
		log.Debug("starting", "child", d.name, "cmd", path+" "+quoteArgs(args))
		// A Go panic exits with status 2, which is also a usage error's
		// (never restarted): with GOTRACEBACK=crash a panic ends by
		// SIGABRT instead, and the daemon is restarted (as in the units).
		var env []string
		if os.Getenv("GOTRACEBACK") == "" {
			env = append(env, "GOTRACEBACK=crash")
		}
		if err := sup.Start(supervisor.Spec{Name: d.name, Path: path, Args: args, Env: env, NoRestartCodes: []int{2}}); err != nil {
			return err
		}
		u.waitReady(ctx, conn, sup, d.name)
	}

	u.printEndpoints(stdout, node, natsURL, busNote, stateDir, runtimeDir, sup.Status())
	<-ctx.Done()
	log.Info("stopping node")
	return nil
}

// busUsers makes (once) the node's bus keys in keyDir and returns the
// users the embedded bus admits: each daemon and rtpctl, with its
// permissions.
func busUsers(keyDir, node string) ([]embedbus.User, error) {
	keys, err := busauth.EnsureKeys(keyDir)
	if err != nil {
		return nil, err
	}
	users := make([]embedbus.User, 0, len(keys))
	for _, k := range keys {
		p, err := busauth.For(k.Role, node)
		if err != nil {
			return nil, err
		}
		users = append(users, embedbus.User{Nkey: k.Public, Publish: p.Publish, Subscribe: p.Subscribe, Responses: p.Responses})
	}
	return users, nil
}

// waitReady waits until name answers its ping, gave up, or the timeout passes.
func (u *upCmd) waitReady(ctx context.Context, conn *bus.Conn, sup *supervisor.Supervisor, name string) {
	deadline := time.Now().Add(u.opts.ready)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		for _, st := range sup.Status() {
			if st.Name == name && st.State != supervisor.StateRunning && st.State != supervisor.StateStarting {
				return
			}
		}
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := bus.Request(pctx, conn, api.Ping(name), api.Empty{})
		cancel()
		if err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (u *upCmd) findBinary(name string) (string, error) {
	if u.opts.binDir != "" {
		p := filepath.Join(u.opts.binDir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("daemon %s not found in --bin-dir %s", name, u.opts.binDir)
		}
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("daemon %s not found next to rtpctl or in PATH (make build puts all binaries in bin/; or give --bin-dir)", name)
	}
	return p, nil
}

func (u *upCmd) printEndpoints(w io.Writer, node, natsURL, busNote, stateDir, runtimeDir string, sts []supervisor.Status) {
	fmt.Fprintf(w, "rtpkit node %q is up (rtpctl up, pid %d)\n", node, os.Getpid())
	fmt.Fprintf(w, "  %-12s %s (%s)\n", "bus", natsURL, busNote)
	fmt.Fprintf(w, "  %-12s %s\n", "state-dir", stateDir)
	fmt.Fprintf(w, "  %-12s %s\n", "runtime-dir", runtimeDir)
	running := map[string]bool{}
	for _, st := range sts {
		switch st.State {
		case supervisor.StateRunning:
			running[st.Name] = true
			fmt.Fprintf(w, "  %-12s running, pid %d\n", st.Name, st.PID)
		case supervisor.StateGaveUp:
			fmt.Fprintf(w, "  %-12s not running: %s\n", st.Name, st.LastExit)
		default:
			fmt.Fprintf(w, "  %-12s %s (%s)\n", st.Name, st.State, st.LastExit)
		}
	}
	var ngCfg ngctl.Config
	for _, d := range u.daemons {
		if c, ok := d.cfg.(*ngctl.Config); ok {
			ngCfg = *c
		}
	}
	note := ""
	if !running["ng-ctl"] {
		note = "  (no ng-ctl running: nothing answers there yet)"
	}
	for _, a := range ngCfg.Listeners() {
		fmt.Fprintf(w, "  %-12s udp %s%s\n", "ng", a, note)
	}
	for _, a := range ngCfg.ListenTCPNG {
		fmt.Fprintf(w, "  %-12s tcp %s%s\n", "ng", a, note)
	}
	for _, a := range ngCfg.ListenHTTP {
		fmt.Fprintf(w, "  %-12s http://%s/ng%s\n", "ng", a, note)
	}
	for _, d := range u.daemons {
		var addr string
		switch c := d.cfg.(type) {
		case *portd.Config:
			addr = c.Metrics
		case *rtpfwd.Config:
			addr = c.Metrics
		case *ngctl.Config:
			addr = c.Metrics
		case *redissync.Config:
			addr = c.Metrics
		}
		if addr != "" {
			where := d.name
			if strings.HasSuffix(addr, ":0") {
				where += "; a port it picks, in its log"
			}
			fmt.Fprintf(w, "  %-12s http://%s%s (%s)\n", "metrics", addr, metrics.Path, where)
		}
	}
	fmt.Fprintf(w, "Stop with Ctrl-C (SIGINT) or SIGTERM.\n")
}

// cmdUp is `rtpctl up`.
func cmdUp(args []string, stdout, stderr io.Writer) int {
	u := newUpCmd()
	synopsis := "rtpctl up [options]"
	if err := u.parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			cli.PrintUsage(stdout, u.fs, synopsis, upSummary)
			return 0
		}
		fmt.Fprintf(stderr, "rtpctl up: %v\n", err)
		cli.PrintUsage(stderr, u.fs, synopsis, upSummary)
		return 2
	}
	log := u.opts.common.NewLogger(stderr, "rtpctl-up")
	// The children are forked from the spawner's thread and inherit its
	// nice value: it keeps the one rtpctl up started with (and takes the
	// policy), while the other threads, the embedded bus's, run the
	// background priority (upTuning's Priority).
	sched, prio := u.opts.common.Scheduling, u.opts.common.Priority
	spawner := supervisor.StartSpawner(func() { proctune.ApplyThreadPolicy(upTuning.Scheduling(sched), prio, log) })
	upTuning.Apply("rtpctl-up", sched, prio, log, spawner) // the embedded bus runs in this process
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := u.run(ctx, stdout, log); err != nil {
		log.Error("node failed", "err", err)
		return 1
	}
	return 0
}
