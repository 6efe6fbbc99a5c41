package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/awscfg"
	"github.com/ec2-isolation/ec2-isolation/internal/inspect"
	"github.com/ec2-isolation/ec2-isolation/internal/notify"
	"github.com/ec2-isolation/ec2-isolation/internal/preflight"
	"github.com/ec2-isolation/ec2-isolation/internal/prereq"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
	"github.com/ec2-isolation/ec2-isolation/internal/validate"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Exit codes of run and preflight.
const (
	exitOK = 0
	// exitFailed: run: the execution failed or the instance is not isolated at the end (or "Validate and record"
	// refused it); preflight: a check failed.
	exitFailed = 1
	// exitUsage: bad flags, or the account or the settings cannot be reached: nothing was changed.
	exitUsage = 2
	// exitDeclined: run was not confirmed: nothing was changed.
	exitDeclined = 3
)

var instanceIDPattern = regexp.MustCompile(`^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$`)

// accountFlags are the flags of the commands that act on the configured AWS account.
type accountFlags struct {
	instance   string
	stack      string
	region     string
	awsProfile string
	names      preflight.Names
	tracking   string
	json       bool
	// createPrereqs: run's --create-prerequisites (prereq.go): no stack; the names are derived, and what is
	// missing is created.
	createPrereqs bool
}

func (a *accountFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.instance, "instance", "", "the instance id (i-…)")
	fs.StringVar(&a.stack, "stack", preflight.DefaultStack, "the deployed stack whose outputs and parameters give the settings not passed as flags")
	fs.StringVar(&a.names.GroupName, "group-name", "", "the isolation security group's name (default: the stack's output "+preflight.OutputGroupName+")")
	fs.StringVar(&a.names.ProfileName, "profile-name", "", "the isolation instance profile's name (default: the stack's output "+preflight.OutputProfileName+")")
	fs.StringVar(&a.names.TopicARN, "topic-arn", "", "the notification topic (default: the stack's output "+preflight.OutputTopicARN+")")
	fs.StringVar(&a.names.IncidentBucket, "incident-bucket", "", "the incident record bucket (default: the stack's output "+preflight.OutputBucket+")")
	fs.StringVar(&a.names.TagKey, "tag-key", "", "the isolation tag key (default: the stack's parameter, else "+preflight.DefaultTagKey+")")
	fs.StringVar(&a.names.TagValue, "tag-value", "", "the isolation tag value (default: the stack's parameter, else "+preflight.DefaultTagValue+")")
	fs.StringVar(&a.tracking, "tracking", "", "connection tracking mode, direct or untrack-first (default: the stack's parameter, else direct)")
	fs.StringVar(&a.region, "region", "", "the AWS region (default: the standard configuration: AWS_REGION, the profile)")
	fs.StringVar(&a.awsProfile, "aws-profile", "", "the AWS configuration profile (default: AWS_PROFILE, else default)")
	fs.BoolVar(&a.json, "json", false, "print the result as JSON")
}

func (a *accountFlags) check(instanceRequired bool) error {
	switch {
	case instanceRequired && a.instance == "":
		return errors.New("--instance is required")
	case a.instance != "" && !instanceIDPattern.MatchString(a.instance):
		return fmt.Errorf("--instance %q is not an instance id (i- and 8 or 17 hex digits)", a.instance)
	case a.tracking != "" && a.tracking != string(secgroup.ModeDirect) && a.tracking != string(secgroup.ModeUntrackFirst):
		return fmt.Errorf("--tracking %q: want %s or %s", a.tracking, secgroup.ModeDirect, secgroup.ModeUntrackFirst)
	}
	a.names.Tracking = secgroup.Mode(a.tracking)
	return nil
}

// account is the configured AWS account, who we are in it, and the workflow's settings there.
type account struct {
	cfg       aws.Config
	id        preflight.Identity
	idErr     error
	names     preflight.Names
	namesFrom string
	namesErr  error
	// prereq: the no-stack mode's resources (with --create-prerequisites).
	prereq prereq.Names
}

// openAccount loads the standard AWS configuration (profile, environment, AWS_ENDPOINT_URL) with the product's
// retry policy, asks STS who we are, and resolves the settings from the flags and the stack.
func openAccount(ctx context.Context, a accountFlags) (account, error) {
	var opts []func(*config.LoadOptions) error
	if a.region != "" {
		opts = append(opts, config.WithRegion(a.region))
	}
	if a.awsProfile != "" {
		opts = append(opts, config.WithSharedConfigProfile(a.awsProfile))
	}
	cfg, err := awscfg.Load(ctx, opts...)
	if err != nil {
		return account{}, err
	}
	if cfg.Region == "" {
		return account{}, errors.New("no AWS region: set AWS_REGION, a region in the profile, or --region")
	}
	acc := account{cfg: cfg}
	acc.id, acc.idErr = preflight.Identify(ctx, sts.NewFromConfig(cfg))
	if a.createPrereqs {
		if acc.idErr != nil {
			return acc, nil
		}
		acc.names, acc.prereq = prereqNames(a.names, acc.id.Account, cfg.Region)
		acc.namesFrom = "--" + createPrereqsFlag
		return acc, nil
	}
	acc.names, acc.namesFrom, acc.namesErr = preflight.Resolve(ctx, cloudformation.NewFromConfig(cfg), a.stack, a.names)
	if errors.Is(acc.namesErr, preflight.ErrNoStack) && a.stack == preflight.DefaultStack && acc.idErr == nil {
		acc.names, acc.namesFrom, acc.namesErr = noStackNames(ctx, acc, a.names, acc.namesErr)
	}
	return acc, nil
}

func (acc account) env() steps.Env {
	env := acc.names.Env()
	return func(k string) string { return env[k] }
}

type runFlags struct {
	accountFlags
	dryRun, yes, io, logs bool
	// rerun is the command line that resumes this run (the failure notification and the last line say it).
	rerun string
}

func parseRunFlags(args []string, stderr io.Writer) (runFlags, error) {
	var f runFlags
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: isolation run --instance i-… [--dry-run] [--yes] [flags]

Break-glass isolation from this machine, for when the deployed state machine is unavailable or not deployed:
runs statemachine/isolation.asl.json with the real step handlers in this process, against the account and region
of the standard AWS configuration (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, …). The execution starts from the
event a tag would have produced, validated by "Validate and record". Prints the plan and asks for confirmation
unless --yes. --dry-run changes nothing: it validates and records the instance, prints the plan and the
preflight checks. Without a stack, --create-prerequisites creates the isolation profile, the topic and the
incident bucket when missing (listed in the plan), then isolates.

Exit status: 0 isolated; 1 the execution failed or the instance is not isolated at the end (or refused);
2 bad flags, the account or the settings unreachable; 3 not confirmed.

flags:
`)
		fs.PrintDefaults()
	}
	f.register(fs)
	fs.BoolVar(&f.dryRun, "dry-run", false, "change nothing: print the plan and the preflight checks")
	fs.BoolVar(&f.yes, "yes", false, "do not ask for confirmation")
	fs.BoolVar(&f.io, "io", false, "print each state's input and output")
	fs.BoolVar(&f.logs, "logs", false, "print the handlers' JSON logs to stderr")
	fs.BoolVar(&f.createPrereqs, createPrereqsFlag, false, "without a stack: create the isolation profile (and its role), the topic and the incident bucket when missing (names derived from the account and region), then isolate")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	f.rerun = commandLine("run", args)
	stackSet := false
	fs.Visit(func(fl *flag.Flag) { stackSet = stackSet || fl.Name == "stack" })
	if err := checkPrereqFlags(f, stackSet); err != nil {
		return f, err
	}
	return f, f.check(true)
}

// runCommand is `isolation run`.
func runCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	f, err := parseRunFlags(args, stderr)
	if code, done := flagsFailed("run", err, stderr); done {
		return code
	}
	fail := func(err error) int { fmt.Fprintln(stderr, "isolation run:", userFacing(err)); return exitUsage }
	acc, err := openUsableAccount(ctx, f.accountFlags)
	if err != nil {
		return fail(err)
	}
	logOut := io.Discard
	if f.logs {
		logOut = stderr
	}
	log := slog.New(slog.NewJSONHandler(logOut, nil))
	event := preflight.Event(acc.id, acc.cfg.Region, f.instance, acc.names, time.Now())
	name := fmt.Sprintf("run-%s-%s", f.instance, time.Now().UTC().Format("20060102T150405Z"))

	// The plan: what "Validate and record" reads (it changes nothing). The instance need not carry the tag yet:
	// the run sets it before it starts.
	settings, err := validate.SettingsFromEnv(acc.env())
	if err != nil {
		return fail(err)
	}
	rec, err := validate.New(ec2.NewFromConfig(acc.cfg), settings, log.With("function", "validate-and-record")).
		Observe(ctx, workflow.ValidateInput{Event: event, ExecutionName: name})
	if err != nil {
		fmt.Fprintf(stderr, "isolation run: \"Validate and record\" refused %s, nothing was changed: %v\n", f.instance, err)
		return exitFailed
	}

	prereqs, err := planPrereqs(ctx, f, acc)
	if err != nil {
		return fail(err)
	}

	if f.dryRun {
		rep := preflight.Run(ctx, preflightClients(acc.cfg), preflight.Input{
			Identity: acc.id, Names: acc.names, NamesFrom: acc.namesFrom, InstanceID: f.instance,
		})
		if f.json {
			if err := writeJSON(stdout, struct {
				Plan      workflow.Record  `json:"plan"`
				Preflight preflight.Report `json:"preflight"`
				// Prerequisites: what --create-prerequisites would create.
				Prerequisites []prereq.Step `json:"prerequisites,omitempty"`
			}{rec, rep, prereqs}); err != nil {
				return fail(err)
			}
		} else {
			printPlan(stdout, acc, readPlan(ctx, acc, rec))
			if f.createPrereqs {
				printPrereqs(stdout, prereqs)
			}
			fmt.Fprintln(stdout)
			printPreflight(stdout, rep)
			fmt.Fprintln(stdout, "\nDry run: nothing was changed.")
		}
		if !rep.OK() {
			return exitFailed
		}
		return exitOK
	}

	if !f.json {
		printPlan(stdout, acc, readPlan(ctx, acc, rec))
		if f.createPrereqs {
			printPrereqs(stdout, prereqs)
		}
	}
	question := fmt.Sprintf("Isolate %s in account %s (%s)? Every change listed above is made.", f.instance, acc.id.Account, acc.cfg.Region)
	if len(prereqs) > 0 {
		question += fmt.Sprintf(" The %d prerequisite steps listed are made first.", len(prereqs))
	}
	if !f.yes && !confirm(stdin, stderr, question, f.instance) {
		fmt.Fprintln(stderr, "isolation run: not confirmed; nothing was changed (--yes skips the question)")
		return exitDeclined
	}

	if len(prereqs) > 0 {
		if err := prereq.Create(ctx, prereqClients(acc), acc.prereq, acc.cfg.Region, prereqs); err != nil {
			fmt.Fprintf(stderr, "isolation run: creating the prerequisites failed, the instance was not changed (run the same command again: what exists is reused): %v\n", err)
			return exitFailed
		}
	}

	// The current tag decides (the workflow's Validate refuses an instance that does not carry it): set it first,
	// as a responder would, so that the break-glass run, the tag and everything that reads the tag agree.
	if err := setTag(ctx, ec2.NewFromConfig(acc.cfg), f.instance, acc.names.TagKey, acc.names.TagValue, rec.Tags); err != nil {
		fmt.Fprintf(stderr, "isolation run: cannot set the tag %s=%s on %s, nothing was changed: %v\n", acc.names.TagKey, acc.names.TagValue, f.instance, err)
		return exitFailed
	}
	res, err := isolate(ctx, acc, f, event, name, log, newProgress(stderr, f.json, time.Now))
	if err != nil {
		return fail(err)
	}
	if f.json {
		if err := writeJSON(stdout, res); err != nil {
			return fail(err)
		}
	} else {
		fmt.Fprintln(stdout)
		printResult(stdout, res, f.io)
	}
	if last := res.Executions[len(res.Executions)-1]; last.Status != asl.StatusSucceeded || !*res.Isolated {
		if last.Status != asl.StatusSucceeded {
			fmt.Fprintf(stderr, "isolation run: the execution failed at %s. It ran in this process: there is nothing to redrive. Fix the cause, then run the same command again (every step does only what is missing):\n  %s\n", failedAt(last), f.rerun)
		}
		return exitFailed
	}
	return exitOK
}

// failedAt names the state where the execution failed (the last failed state of its history), else its error.
func failedAt(e executionReport) string {
	for i := len(e.States) - 1; i >= 0; i-- {
		if s := e.States[i]; s.Status == asl.RunFailed && s.Type != "Fail" && !strings.HasPrefix(s.Name, "Notify") {
			return fmt.Sprintf("%q (%s)", s.Name, s.Error)
		}
	}
	return e.Error
}

// commandLine is the command as a responder would type it again, each argument quoted for a POSIX shell where
// needed.
func commandLine(command string, args []string) string {
	out := "isolation " + command
	for _, a := range args {
		if a == "" || strings.ContainsFunc(a, func(r rune) bool {
			return !(r == '-' || r == '_' || r == '.' || r == '/' || r == ':' || r == '=' || r == '@' || r == ',' || r == '+' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z'))
		}) {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out += " " + a
	}
	return out
}

// isolate runs the state machine and reads the instance before and after.
func isolate(ctx context.Context, acc account, f runFlags, event workflow.TagEvent, name string, log *slog.Logger, show *progress) (result, error) {
	env := acc.names.Env()
	env[notify.EnvRerunCommand] = f.rerun
	r, published, err := localRunner(acc, ec2isolation.Definition, "", env, log, show)
	if err != nil {
		return result{}, err
	}
	input, err := json.Marshal(event)
	if err != nil {
		return result{}, err
	}
	reader := ec2.NewFromConfig(acc.cfg)
	res := result{Account: acc.id.Account, Region: acc.cfg.Region, Caller: acc.id.ARN, InstanceID: f.instance}
	if before, err := inspect.Read(ctx, reader, f.instance); err == nil {
		res.Before = &before
	}
	show.begin("Execution " + name + ":")
	exec := r.Start(ctx, name, input)
	show.end()
	res.Executions = append(res.Executions, report(exec))
	after, err := inspect.Read(ctx, reader, f.instance)
	if err == nil {
		res.After = &after
	}
	res.Problems = notIsolated(res.After, err, acc.names)
	isolated := len(res.Problems) == 0
	res.Isolated = &isolated
	res.Notifications = published()
	return res, nil
}

// notIsolated says what is not contained: an ENI with another group than the isolation group, or an instance
// profile other than the isolation profile.
func notIsolated(after *inspect.Instance, readErr error, n preflight.Names) []string {
	if after == nil {
		return []string{fmt.Sprintf("the instance cannot be read back: %v", readErr)}
	}
	var problems []string
	if len(after.NetworkInterfaces) == 0 {
		problems = append(problems, "it has no network interface")
	}
	for _, eni := range after.NetworkInterfaces {
		if len(eni.Groups) != 1 || !strings.HasSuffix(eni.Groups[0], "("+n.GroupName+")") {
			problems = append(problems, fmt.Sprintf("%s carries %s, want only %q", eni.ID, orNone(eni.Groups), n.GroupName))
		}
	}
	ok := len(after.Profiles) == 1
	if ok {
		arn, state, _ := strings.Cut(after.Profiles[0], " (")
		ok = profileNamed(arn, n.ProfileName) && (state == "associated)" || state == "associating)")
	}
	if !ok {
		problems = append(problems, fmt.Sprintf("its instance profile is %s, want only %q", orNone(after.Profiles), n.ProfileName))
	}
	return problems
}

func profileNamed(arn, name string) bool {
	_, res, ok := strings.Cut(arn, ":instance-profile/")
	return ok && strings.EqualFold(res[strings.LastIndex(res, "/")+1:], name)
}

// capturePublish passes each successful SNS Publish's input to sink.
func capturePublish(sink func(*sns.PublishInput)) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("CapturePublish",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if p, ok := in.Parameters.(*sns.PublishInput); ok && err == nil {
					sink(p)
				}
				return out, md, err
			}), middleware.After)
	}
}

// confirm asks question on stderr and reads the answer from stdin: "yes" or the instance id.
func confirm(stdin io.Reader, stderr io.Writer, question, instance string) bool {
	fmt.Fprintf(stderr, "\n%s\nType yes or the instance id to go on: ", question)
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(stderr)
		return false
	}
	answer := strings.TrimSpace(line)
	return answer == "yes" || answer == instance
}

// openUsableAccount is openAccount, failing unless the caller's identity and the stack's settings were read.
func openUsableAccount(ctx context.Context, a accountFlags) (account, error) {
	acc, err := openAccount(ctx, a)
	return acc, cmp.Or(err, acc.idErr, acc.namesErr)
}

// localRunner runs def (machine: its name in execution ARNs, "" for the isolation's) in this process against the
// account with env as the functions' environment. published returns what "Notify" published, to print it as
// simulate does (a real topic cannot be read back).
func localRunner(acc account, def []byte, machine string, env map[string]string, log *slog.Logger, show *progress) (r *runner.Runner, published func() []notificationShown, err error) {
	var (
		mu    sync.Mutex
		shown []notificationShown
	)
	r, err = runner.New(runner.Config{
		Definition: def, StateMachineName: machine,
		Region: acc.cfg.Region, Account: acc.id.Account,
		AWS: func(function string) aws.Config {
			cfg := acc.cfg.Copy()
			if function == "notify" {
				cfg.APIOptions = append(slices.Clip(cfg.APIOptions), capturePublish(func(in *sns.PublishInput) {
					mu.Lock()
					defer mu.Unlock()
					shown = append(shown, showMessage(aws.ToString(in.Subject), aws.ToString(in.Message), aws.ToString(in.MessageStructure)))
				}))
			}
			return cfg
		},
		Env:        func(k string) string { return env[k] },
		Log:        log,
		OnProgress: show.callback(),
	})
	return r, func() []notificationShown { mu.Lock(); defer mu.Unlock(); return slices.Clone(shown) }, err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// setTag sets key=value on the instance unless its tags (as just read) already say so.
func setTag(ctx context.Context, c *ec2.Client, instance, key, value string, tags map[string]string) error {
	if v, ok := tags[key]; ok && v == value {
		return nil
	}
	_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{instance},
		Tags: []ec2types.Tag{{Key: aws.String(key), Value: aws.String(value)}}})
	return err
}

// preflightClients builds the clients the checks use.
func preflightClients(cfg aws.Config) preflight.Clients {
	return preflight.Clients{EC2: ec2.NewFromConfig(cfg), IAM: iam.NewFromConfig(cfg), SNS: sns.NewFromConfig(cfg),
		S3: s3.NewFromConfig(cfg), AutoScaling: autoscaling.NewFromConfig(cfg), ELB: elb.NewFromConfig(cfg)}
}
