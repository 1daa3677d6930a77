package ngctl

import (
	"fmt"
	"strings"
	"testing"
)

// TestStatsBoundedByCommand: the per-command statistics hold the commands
// ng-ctl serves plus one entry for all others, however many different
// command strings clients send; an unknown command's name never reaches
// the statistics reply.
func TestStatsBoundedByCommand(t *testing.T) {
	for _, tt := range []struct {
		name     string
		commands []string
		wantCmds int // entries of the per-command statistics
	}{
		{name: "known only", commands: []string{"ping", "ping", "list"}, wantCmds: 2},
		{name: "many unknown", commands: unknownCommands(5000), wantCmds: 1},
		{name: "known and unknown", commands: append(unknownCommands(100), "ping"), wantCmds: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestProtocol()
			for _, c := range tt.commands {
				handle(p, fmt.Sprintf("d7:command%d:%se", len(c), c))
			}
			p.mu.Lock()
			cmds := len(p.cmds)
			var perProxy int
			for _, ps := range p.proxies {
				perProxy = max(perProxy, len(ps.count), len(ps.duration))
			}
			p.mu.Unlock()
			if cmds != tt.wantCmds || perProxy != tt.wantCmds {
				t.Errorf("after %d requests: %d per-command entries, %d per proxy; want %d", len(tt.commands), cmds, perProxy, tt.wantCmds)
			}
			reply := handle(p, "d7:command10:statisticse")
			if strings.Contains(reply, "bogus") {
				t.Errorf("statistics reply names an unknown command: %.200s", reply[strings.Index(reply, "bogus")-20:])
			}
		})
	}
}

// unknownCommands returns n different command names ng-ctl does not serve.
func unknownCommands(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("bogus-%d", i)
	}
	return out
}
