package main

import (
	"errors"
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

// flagsFailed ends a command whose flags did not parse: help asked for (exit 0), or bad flags, said on stderr in
// the user's words (exit 2). done is false when err is nil.
func flagsFailed(name string, err error, stderr io.Writer) (code int, done bool) {
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		return exitOK, true
	default:
		fmt.Fprintln(stderr, "isolation "+name+":", userFacing(err))
		return exitUsage, true
	}
}
