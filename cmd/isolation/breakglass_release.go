package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/inspect"
	"github.com/ec2-isolation/ec2-isolation/internal/preflight"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
)

type releaseFlags struct {
	accountFlags
	releaseValue  string
	yes, io, logs bool
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
	return f, f.check(true)
}

// releaseCommand is `isolation release`.
func releaseCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	f, err := parseReleaseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "isolation release:", err)
		return exitUsage
	}
	fail := func(err error) int { fmt.Fprintln(stderr, "isolation release:", err); return exitUsage }
	acc, err := openAccount(ctx, f.accountFlags)
	switch {
	case err != nil:
		return fail(err)
	case acc.idErr != nil:
		return fail(acc.idErr)
	case acc.namesErr != nil:
		return fail(acc.namesErr)
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
	if !f.yes && !confirmRelease(stdin, stderr, f.instance, acc) {
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
	var (
		mu        sync.Mutex
		published []notificationShown
	)
	r, err := runner.New(runner.Config{
		Definition: ec2isolation.ReleaseDefinition, StateMachineName: runner.ReleaseStateMachineName,
		Region: acc.cfg.Region, Account: acc.id.Account,
		AWS: func(function string) aws.Config {
			cfg := acc.cfg.Copy()
			if function == "notify" {
				cfg.APIOptions = append(slices.Clip(cfg.APIOptions), capturePublish(func(in *sns.PublishInput) {
					mu.Lock()
					defer mu.Unlock()
					published = append(published, showMessage(aws.ToString(in.Subject), aws.ToString(in.Message), aws.ToString(in.MessageStructure)))
				}))
			}
			return cfg
		},
		Env: func(k string) string { return env[k] },
		Log: slog.New(slog.NewJSONHandler(logOut, nil)),
	})
	if err != nil {
		return fail(err)
	}
	res := result{Account: acc.id.Account, Region: acc.cfg.Region, Caller: acc.id.ARN, InstanceID: f.instance}
	if before, err := inspect.Read(ctx, client, f.instance); err == nil {
		res.Before = &before
	}
	name := fmt.Sprintf("release-%s-%s", f.instance, time.Now().UTC().Format("20060102T150405Z"))
	exec := r.Start(ctx, name, event)
	res.Executions = append(res.Executions, report(exec))
	if after, err := inspect.Read(ctx, client, f.instance); err == nil {
		res.After = &after
	}
	mu.Lock()
	res.Notifications = published
	mu.Unlock()
	if f.json {
		if err := writeJSON(stdout, res); err != nil {
			return fail(err)
		}
	} else {
		fmt.Fprintln(stdout)
		printResult(stdout, res, f.io)
	}
	if exec.Status != asl.StatusSucceeded {
		return exitFailed
	}
	return exitOK
}

// confirmRelease asks on stderr and reads the answer from stdin: "yes" or the instance id.
func confirmRelease(stdin io.Reader, stderr io.Writer, instance string, acc account) bool {
	fmt.Fprintf(stderr, "\nRelease %s in account %s (%s)? Its pre-isolation network access and instance profile come back.\nType yes or the instance id to go on: ",
		instance, acc.id.Account, acc.cfg.Region)
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(stderr)
		return false
	}
	answer := strings.TrimSpace(line)
	return answer == "yes" || answer == instance
}
