package ngctl

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/sdp"
)

// sdp-attr (rtpengine's SDP attribute manipulations): a dictionary of
// sections ("none" or "global" for the session level, or a media type),
// each a dictionary of commands: add and remove take lists of attribute
// values, substitute a list of [from, to] pairs. The same can come as
// flags: sdp-attr-add-SECTION-VALUE, sdp-attr-remove-SECTION-VALUE and
// sdp-attr-substitute-SECTION-FROM>TO, where ".." stands for a space and
// "--" for "=".

// sdpAttrSections are the section names sdp-attr accepts, and what they
// name in sdp.AttrEdits.
var sdpAttrSections = map[string]string{
	"none": sdp.SessionSection, "global": sdp.SessionSection,
	"audio": "audio", "video": "video", "image": "image", "text": "text", "application": "application", "message": "message",
}

// parseSDPAttr reads the sdp-attr key (v, if present) and the sdp-attr
// flags into edits, with a problem for each part it cannot use.
func parseSDPAttr(v bencode.Value, present bool, flags map[string]bool) (sdp.AttrEdits, []string) {
	if !present && !hasPrefixedFlag(flags, "sdp-attr-") {
		return nil, nil // the common case costs nothing
	}
	edits := sdp.AttrEdits{}
	var problems []string
	edit := func(section string) *sdp.AttrEdit {
		name, ok := sdpAttrSections[strings.ToLower(section)]
		if !ok {
			problems = append(problems, fmt.Sprintf("sdp-attr section %q is not one of none, global or a media type", section))
			return nil
		}
		if edits[name] == nil {
			edits[name] = &sdp.AttrEdit{}
		}
		return edits[name]
	}
	if present {
		if v.Kind != bencode.KindDict {
			problems = append(problems, "sdp-attr is not a dictionary")
		}
		for _, sec := range v.Dict {
			ed := edit(sec.Key)
			if ed == nil {
				continue
			}
			if sec.Value.Kind != bencode.KindDict {
				problems = append(problems, fmt.Sprintf("sdp-attr %s is not a dictionary", sec.Key))
				continue
			}
			for _, cmd := range sec.Value.Dict {
				problems = append(problems, sdpAttrCommand(ed, sec.Key, cmd.Key, cmd.Value)...)
			}
		}
	}
	var fl []string
	for f := range flags {
		if strings.HasPrefix(f, "sdp-attr-") {
			fl = append(fl, f)
		}
	}
	sort.Strings(fl) // the map lost the order; be deterministic
	for _, f := range fl {
		cmd, rest, _ := strings.Cut(strings.TrimPrefix(f, "sdp-attr-"), "-")
		section, val, ok := strings.Cut(rest, "-")
		if !ok || val == "" {
			problems = append(problems, fmt.Sprintf("flag %s: want sdp-attr-COMMAND-SECTION-VALUE", f))
			continue
		}
		ed := edit(section)
		if ed == nil {
			continue
		}
		val = strings.NewReplacer("..", " ", "--", "=").Replace(val)
		switch cmd {
		case "add":
			ed.Add = append(ed.Add, val)
		case "remove":
			ed.Remove = append(ed.Remove, val)
		case "substitute":
			from, to, ok := strings.Cut(val, ">")
			if !ok || from == "" || to == "" {
				problems = append(problems, fmt.Sprintf("flag %s: want FROM>TO", f))
				continue
			}
			ed.Substitute = append(ed.Substitute, [2]string{from, to})
		default:
			problems = append(problems, fmt.Sprintf("flag %s: sdp-attr command %q is not add, remove or substitute", f, cmd))
		}
	}
	for name, ed := range edits {
		ed.Add = slices.DeleteFunc(ed.Add, func(a string) bool {
			if !sdp.OneLine(strings.TrimPrefix(a, "a=")) {
				problems = append(problems, fmt.Sprintf("sdp-attr %s add %q is not one attribute line", sectionName(name), a))
				return true
			}
			return false
		})
		ed.Substitute = slices.DeleteFunc(ed.Substitute, func(p [2]string) bool {
			if !sdp.OneLine(strings.TrimPrefix(p[1], "a=")) {
				problems = append(problems, fmt.Sprintf("sdp-attr %s substitute %q is not one attribute line", sectionName(name), p[1]))
				return true
			}
			return false
		})
	}
	if edits.Empty() {
		edits = nil
	}
	sort.Strings(problems)
	return edits, problems
}

// sdpAttrCommand adds one command of a section to ed.
func sdpAttrCommand(ed *sdp.AttrEdit, section, cmd string, v bencode.Value) []string {
	switch cmd {
	case "add", "remove":
		l, ok := v.StringList()
		if !ok {
			return []string{fmt.Sprintf("sdp-attr %s %s is not a list of strings", section, cmd)}
		}
		if cmd == "add" {
			ed.Add = append(ed.Add, l...)
		} else {
			ed.Remove = append(ed.Remove, l...)
		}
		return nil
	case "substitute":
		if v.Kind != bencode.KindList {
			return []string{fmt.Sprintf("sdp-attr %s substitute is not a list", section)}
		}
		// A list of pairs; rtpengine also takes one flat pair.
		if l, ok := v.StringList(); ok && len(l) == 2 {
			ed.Substitute = append(ed.Substitute, [2]string{l[0], l[1]})
			return nil
		}
		var problems []string
		for _, p := range v.List {
			l, ok := p.StringList()
			if !ok || len(l) < 2 {
				problems = append(problems, fmt.Sprintf("sdp-attr %s substitute: want [from, to] pairs", section))
				continue
			}
			ed.Substitute = append(ed.Substitute, [2]string{l[0], l[1]})
		}
		return problems
	}
	return []string{fmt.Sprintf("sdp-attr %s: command %q is not add, remove or substitute", section, cmd)}
}

// hasPrefixedFlag reports whether a flag starts with prefix.
func hasPrefixedFlag(flags map[string]bool, prefix string) bool {
	for f := range flags {
		if strings.HasPrefix(f, prefix) {
			return true
		}
	}
	return false
}

// sectionName is an AttrEdits key as sdp-attr spells it.
func sectionName(key string) string {
	if key == sdp.SessionSection {
		return "none"
	}
	return key
}
