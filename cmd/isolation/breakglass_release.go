package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/inspect"
	"github.com/ec2-isolation/ec2-isolation/internal/notify"
	"github.com/ec2-isolation/ec2-isolation/internal/preflight"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
)

type releaseFlags struct {
	accountFlags
	releaseValue  string
	yes, io, logs bool
	rerun         string // the command line that resumes this release
}

func parseReleaseFlags(args []string, stderr io.Writer) (releaseFlags, error) {
	var f releaseFlags
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: isolation release --instance i-… [--yes] [flags]

Break-glass release from this machine: sets the instance's isolation tag to the release value (the current tag
decides: the release workflow refuses an instance that does not carry it), then runs statemachine/release.asl.json
with the real step handlers in this process, against the account and region of the standard AWS configuration.
It restores what the incident record holds. Asks for confirmation unless --yes.

Exit status: 0 released; 1 the release failed or was refused; 2 bad flags, the account or the settings
unreachable; 3 not confirmed.

flags:
`)
		fs.PrintDefaults()
	}
	f.register(fs)
	fs.StringVar(&f.releaseValue, "release-value", "", "the tag value that releases an instance (default: the stack's parameter, else "+defaultReleaseValue+")")
	fs.BoolVar(&f.yes, "yes", false, "do not ask for confirmation")
	fs.BoolVar(&f.io, "io", false, "print each state's input and output")
	fs.BoolVar(&f.logs, "logs", false, "print the handlers' JSON logs to stderr")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	f.rerun = commandLine("release", args)
	return f, f.check(true)
}

// releaseCommand is `isolation release`.
func releaseCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	f, err := parseReleaseFlags(args, stderr)
	if code, done := flagsFailed("release", err, stderr); done {
		return code
	}
	fail := func(err error) int { fmt.Fprintln(stderr, "isolation release:", userFacing(err)); return exitUsage }
	acc, err := openUsableAccount(ctx, f.accountFlags)
	if err != nil {
		return fail(err)
	}
	env := acc.names.Env()
	value := f.releaseValue
	if value == "" {
		value = env["RELEASE_TAG_VALUE"]
	}
	if value == "" {
		value = defaultReleaseValue
	}
	if value == acc.names.TagValue {
		return fail(fmt.Errorf("the release value %q is the isolation value", value))
	}
	env["RELEASE_TAG_VALUE"] = value
	env[notify.EnvRerunCommand] = f.rerun
	key := acc.names.TagKey

	isolateEvent, err := json.Marshal(preflight.Event(acc.id, acc.cfg.Region, f.instance, acc.names, time.Now()))
	if err != nil {
		return fail(err)
	}
	event, err := withTagValue(isolateEvent, key, value)
	if err != nil {
		return fail(err)
	}
	if !f.json {
		fmt.Fprintf(stdout, "Plan: release %s in account %s (%s), as %s\n", f.instance, acc.id.Account, acc.cfg.Region, acc.id.ARN)
		fmt.Fprintf(stdout, "  tag: %s=%s, set first (a deployed stack's rule starts its own release too: both do only what is missing)\n", key, value)
		fmt.Fprintln(stdout, "  then: restore what the incident record holds (each ENI's groups, the instance profile, the evidence settings)")
	}
	question := fmt.Sprintf("Release %s in account %s (%s)? Its pre-isolation network access and instance profile come back.", f.instance, acc.id.Account, acc.cfg.Region)
	if !f.yes && !confirm(stdin, stderr, question, f.instance) {
		fmt.Fprintln(stderr, "isolation release: not confirmed; nothing was changed (--yes skips the question)")
		return exitDeclined
	}
	client := ec2.NewFromConfig(acc.cfg)
	if err := setTag(ctx, client, f.instance, key, value, nil); err != nil {
		fmt.Fprintf(stderr, "isolation release: cannot set the tag %s=%s on %s, nothing was changed: %v\n", key, value, f.instance, err)
		return exitFailed
	}

	logOut := io.Discard
	if f.logs {
		logOut = stderr
	}
	show := newProgress(stderr, f.json, time.Now)
	r, published, err := localRunner(acc, ec2isolation.ReleaseDefinition, runner.ReleaseStateMachineName, env, slog.New(slog.NewJSONHandler(logOut, nil)), show)
	if err != nil {
		return fail(err)
	}
	res := result{Account: acc.id.Account, Region: acc.cfg.Region, Caller: acc.id.ARN, InstanceID: f.instance}
	if before, err := inspect.Read(ctx, client, f.instance); err == nil {
		res.Before = &before
	}
	name := fmt.Sprintf("release-%s-%s", f.instance, time.Now().UTC().Format("20060102T150405Z"))
	show.begin("Execution " + name + ":")
	exec := r.Start(ctx, name, event)
	show.end()
	res.Executions = append(res.Executions, report(exec))
	if after, err := inspect.Read(ctx, client, f.instance); err == nil {
		res.After = &after
	}
	res.Notifications = published()
	if f.json {
		if err := writeJSON(stdout, res); err != nil {
			return fail(err)
		}
	} else {
		fmt.Fprintln(stdout)
		printResult(stdout, res, f.io)
	}
	if exec.Status != asl.StatusSucceeded {
		fmt.Fprintf(stderr, "isolation release: the release failed at %s. It ran in this process: there is nothing to redrive. Fix the cause, then run the same command again (every step does only what is missing):\n  %s\n", failedAt(res.Executions[0]), f.rerun)
		return exitFailed
	}
	return exitOK
}
