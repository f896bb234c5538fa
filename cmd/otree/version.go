package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// versionText is what otree --version prints, in the shape of OSTree's:
// the module version (or "(devel)" for a build from a checkout), the
// revision the binary was built from, when the build recorded one, and the
// Go release that built it.
func versionText() string {
	var b strings.Builder
	version, rev, modified := "(devel)", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	fmt.Fprintf(&b, "otree:\n Version: '%s'\n", version)
	if rev != "" {
		if modified {
			rev += " (with uncommitted changes)"
		}
		fmt.Fprintf(&b, " Git: %s\n", rev)
	}
	fmt.Fprintf(&b, " Go: %s\n", runtime.Version())
	return b.String()
}
