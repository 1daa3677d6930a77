package rtpctl

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/busauth"
	"github.com/rtpkit/rtpkit/pkg/cli"
)

const busKeysSummary = `Makes the bus keys of an installed node (the systemd units): one nkey seed per
daemon and one for rtpctl in --dir (mode 0600, the dir 0700; keys already
there are kept), and auth.conf there, the nats-server authorization block
(public keys and each daemon's allowed subjects) that nats-server-rtpkit.conf
includes. Run it again after changing --node-id or upgrading rtpkit, then
reload the bus. See systemd/README.md.`

// AuthConfName is the file, in the key dir, holding the nats-server
// authorization block.
const AuthConfName = "auth.conf"

// cmdBusKeys is `rtpctl bus-keys`.
func cmdBusKeys(args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("rtpctl bus-keys")
	dir := fs.String("dir", busauth.SystemKeyDir, "`dir` of the key files and auth.conf")
	node := fs.String("node-id", bus.DefaultNodeID(), "`id` of the node whose bus this is")
	synopsis := "rtpctl bus-keys [--dir DIR] [--node-id ID]"
	if err := cli.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			cli.PrintUsage(stdout, fs, synopsis, busKeysSummary)
			return ExitOK
		}
		fmt.Fprintf(stderr, "rtpctl bus-keys: %v\n", err)
		cli.PrintUsage(stderr, fs, synopsis, busKeysSummary)
		return ExitUsage
	}
	if err := bus.ValidNodeID(*node); err != nil {
		fmt.Fprintf(stderr, "rtpctl bus-keys: --node-id: %v\n", err)
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rtpctl bus-keys: unexpected argument %q\nUsage: %s\n", fs.Arg(0), synopsis)
		return ExitUsage
	}
	conf, err := writeBusKeys(*dir, *node)
	if err != nil {
		fmt.Fprintf(stderr, "rtpctl bus-keys: %v\n", err)
		return ExitFailed
	}
	fmt.Fprintf(stdout, "bus keys of node %q in %s; nats-server authorization in %s\n", *node, *dir, conf)
	return ExitOK
}

// writeBusKeys makes the keys in dir (once) and writes dir/auth.conf for
// node, returning its path.
func writeBusKeys(dir, node string) (string, error) {
	keys, err := busauth.EnsureKeys(dir)
	if err != nil {
		return "", err
	}
	text, err := busauth.ServerConfig(node, keys)
	if err != nil {
		return "", err
	}
	conf := filepath.Join(dir, AuthConfName)
	tmp := conf + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, conf); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", conf, err)
	}
	return conf, nil
}
