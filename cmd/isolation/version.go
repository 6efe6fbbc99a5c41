package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// version is the module version `go install …/cmd/isolation@vX` stamps, else "(devel)", with the commit a build
// from a clone records.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "isolation (no build information)"
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	out := "isolation " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		out += fmt.Sprintf(" (commit %s %s%s)", rev, at, dirty)
	}
	return out + ", " + info.GoVersion
}

func printVersion(w io.Writer) int {
	fmt.Fprintln(w, version())
	return exitOK
}
