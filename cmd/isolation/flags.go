package main

import (
	"flag"
	"fmt"
	"io"
)

// parseAccountFlags parses the flags of a command that takes only the account flags (status, record,
// preflight): usage is its help text before the flag list; needInstance makes --instance required.
func parseAccountFlags(name, usage string, args []string, stderr io.Writer, needInstance bool) (accountFlags, error) {
	var f accountFlags
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return f, f.check(needInstance)
}
