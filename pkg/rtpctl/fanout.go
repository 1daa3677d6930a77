package rtpctl

import (
	"flag"
	"sort"
	"strings"
)

// member is one daemon's option set inside `rtpctl up`'s union of options.
type member struct {
	name string
	fs   *flag.FlagSet
}

// fanout is an option of the union that sets the same-named option of every
// member that has it, so that `rtpctl up` takes the whole option table and
// hands each daemon its own part.
type fanout struct {
	name    string
	members []*flag.FlagSet
	isBool  bool
}

func (f *fanout) String() string {
	if f == nil || len(f.members) == 0 {
		return ""
	}
	return f.members[0].Lookup(f.name).Value.String()
}

func (f *fanout) Set(v string) error {
	for _, fs := range f.members {
		if err := fs.Set(f.name, v); err != nil {
			return err
		}
	}
	return nil
}

func (f *fanout) IsBoolFlag() bool { return f.isBool }

// union registers, in dst, one fan-out option per distinct option name of
// the members (except "config", which stays dst's own).
func union(dst *flag.FlagSet, members []member) {
	byName := map[string]*fanout{}
	for _, m := range members {
		m.fs.VisitAll(func(f *flag.Flag) {
			if f.Name == "config" {
				return
			}
			if fo, ok := byName[f.Name]; ok {
				fo.members = append(fo.members, m.fs)
				return
			}
			fo := &fanout{name: f.Name, members: []*flag.FlagSet{m.fs}}
			if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok {
				fo.isBool = bf.IsBoolFlag()
			}
			byName[f.Name] = fo
			dst.Var(fo, f.Name, f.Usage)
		})
	}
}

// childArgs renders the options set on fs (by the command line, environment
// or config file of `rtpctl up`) as --name=value arguments, with overrides
// replacing or adding values. Sorted, for stable command lines.
func childArgs(fs *flag.FlagSet, overrides map[string]string) []string {
	vals := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "config" {
			vals[f.Name] = f.Value.String()
		}
	})
	for k, v := range overrides {
		if fs.Lookup(k) != nil {
			vals[k] = v
		}
	}
	names := make([]string, 0, len(vals))
	for k := range vals {
		names = append(names, k)
	}
	sort.Strings(names)
	args := make([]string, 0, len(names))
	for _, k := range names {
		args = append(args, "--"+k+"="+vals[k])
	}
	return args
}

// quoteArgs renders args for a log line.
func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \t'\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
