// Command isolation runs the ec2-isolation workflow outside AWS Step Functions.
//
//	isolation simulate [flags]   run the real state machine and handlers against an embedded simulated account
//
// Run `isolation simulate -h` for the flags.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: isolation <command> [flags]

commands:
  simulate   run the isolation state machine with the real handlers against an embedded simulated AWS account
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "simulate":
		return simulate(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "isolation: unknown command %q\n%s", args[0], usage)
	return 2
}
