// Command isolation runs the ec2-isolation workflow outside AWS Step Functions.
//
//	isolation simulate [flags]   run the real state machine and handlers against an embedded simulated account
//	isolation run --instance i-… [--dry-run] [--yes] [flags]   break-glass: the same, against the configured account
//	isolation preflight [--instance i-…] [flags]   check, changing nothing, that the account could isolate it
//	isolation release --instance i-… [--yes] [flags]   break-glass: set the release tag and run the release
//	isolation record --instance i-… [--json] [flags]   print the instance's incident record
//	isolation --version
//
// Run `isolation <command> -h` for the flags.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(runWithInput(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: isolation <command> [flags]

commands:
  simulate   run the isolation state machine with the real handlers against an embedded simulated AWS account
  run        break-glass: run it from this machine against the configured AWS account (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL)
  preflight  check, changing nothing, that the configured account could isolate an instance
  release    break-glass: set the release tag and run the release state machine from this machine
  record     print an instance's incident record (--json: as stored)
  status     every tagged instance: its declared state, whether it is in it, what is open, its incident
  bench      measure the containment path, cold starts, a tagging storm and the cost (docs/PERFORMANCE.md)

isolation --version prints the version.
`

// run is runWithInput without standard input (a confirmation question reads end of file: not confirmed).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWithInput(ctx, args, strings.NewReader(""), stdout, stderr)
}

func runWithInput(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "simulate":
		return simulate(ctx, args[1:], stdout, stderr)
	case "run":
		return runCommand(ctx, args[1:], stdin, stdout, stderr)
	case "preflight":
		return preflightCommand(ctx, args[1:], stdout, stderr)
	case "release":
		return releaseCommand(ctx, args[1:], stdin, stdout, stderr)
	case "record":
		return recordCommand(ctx, args[1:], stdout, stderr)
	case "-version", "--version", "version":
		return printVersion(stdout)
	case "bench":
		return benchCommand(ctx, args[1:], stdout, stderr)
	case "status":
		return statusCommand(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "isolation: unknown command %q\n%s", args[0], usage)
	return 2
}
