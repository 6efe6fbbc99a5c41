package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/bench"
)

// benchCommand is `isolation bench`: run from the repository root (it builds ./functions/... and reads
// template.yaml). See docs/PERFORMANCE.md.
func benchCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: isolation bench [flags]\n\nMeasures the containment path, the functions' cold starts, a tagging storm against EC2's token\nbuckets and the cost per 1,000 isolations; prints Markdown tables (docs/PERFORMANCE.md). Run it from the\nrepository root.\n\nflags:\n")
		fs.PrintDefaults()
	}
	o := bench.Options{Progress: stderr}
	fs.StringVar(&o.Repo, "repo", ".", "the repository root (template.yaml, functions/)")
	fs.DurationVar(&o.Latency, "latency", 100*time.Millisecond, "latency of every simulated AWS answer")
	fs.DurationVar(&o.Costs.Invoke, "invoke-cost", 25*time.Millisecond, "Lambda invoke overhead per invocation (warm)")
	fs.DurationVar(&o.Costs.Transition, "transition-cost", 15*time.Millisecond, "Step Functions time per state transition")
	fs.IntVar(&o.Runs, "runs", 5, "runs of each cold start (median)")
	fs.IntVar(&o.PathRuns, "path-runs", 3, "runs of each containment path row (median)")
	fs.IntVar(&o.Storm, "storm", 1000, "instances tagged at once in the storm")
	fs.Float64Var(&o.StormFactor, "storm-speed", 5, "the storm's simulated clock runs this many times faster than real time (5: what two cores keep up with at 10,000 instances, docs/PERFORMANCE.md)")
	fs.Float64Var(&o.TailFactor, "tail-speed", 40, "the storm's simulated clock speed once every isolation has ended and only the evidence executions are left (0: -storm-speed throughout)")
	conc := fs.String("concurrency", "template", "comma-separated reserved concurrencies of each function, one storm each (template: template.yaml's FunctionConcurrency default, as deployed; 0: none)")
	fs.IntVar(&o.Window, "window", 60, "admission window: at most this many executions running at once, started in tag order (0: every execution started at the tag)")
	fs.IntVar(&o.EvidenceWindow, "evidence-window", -1, "stage 2's admission window: at most this many evidence executions running at once (-1: template.yaml's EvidenceWindow default)")
	fs.IntVar(&o.AccountConcurrency, "account-concurrency", 1000, "the account's Lambda concurrency shared by the functions without a reservation (Lambda's default quota; 0: unlimited)")
	o.Env = map[string]string{}
	fs.Func("env", "KEY=VALUE: override a function environment variable (stack parameter), repeatable", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE, got %q", v)
		}
		o.Env[k] = val
		return nil
	})
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	memprofile := fs.String("memprofile", "", "write a heap profile at the end of the storm to this file (go tool pprof)")
	check := fs.Bool("check", false, "exit 1 unless every storm meets issue 16's properties (all contained, 0 failed, evidence complete; p50 <= 0.55 x containment makespan; evidence and makespan within 1.1 x their bounds); containment against ModifyNetworkInterfaceAttribute's and stage 1's bounds is printed, not checked (too noisy at 300 on a loaded machine)")
	only := fs.String("only", "", "comma-separated parts to run: path, coldstart, storm (default: all)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "isolation bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if o.Runs < 1 || o.PathRuns < 1 || o.Storm < 1 || o.StormFactor <= 0 || o.TailFactor < 0 || o.Window < 0 || o.AccountConcurrency < 0 ||
		o.EvidenceWindow == 0 || o.EvidenceWindow < -1 {
		fmt.Fprintln(stderr, "isolation bench: -runs, -path-runs, -storm and -evidence-window must be at least 1 (-evidence-window -1: the template's), -storm-speed positive, -window and -account-concurrency not negative")
		return 2
	}
	for _, c := range strings.Split(*conc, ",") {
		if c = strings.TrimSpace(c); c == "template" {
			o.Concurrency = append(o.Concurrency, -1)
			continue
		}
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 {
			fmt.Fprintf(stderr, "isolation bench: -concurrency: %q is not a number or template\n", c)
			return 2
		}
		o.Concurrency = append(o.Concurrency, n)
	}
	if *only != "" {
		o.Only = map[string]bool{}
		for _, p := range strings.Split(*only, ",") {
			o.Only[strings.TrimSpace(p)] = true
		}
	}
	var err error
	if o.Scenario, err = scenarios.ReadFile("scenarios/default.json"); err != nil {
		fmt.Fprintln(stderr, "isolation bench:", err)
		return 2
	}
	if o.Event, err = ec2isolation.Events.ReadFile("events/isolate.json"); err != nil {
		fmt.Fprintln(stderr, "isolation bench:", err)
		return 2
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(stderr, "isolation bench:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "isolation bench:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	o.HeapProfile = *memprofile
	rep, err := bench.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "isolation bench:", err)
		return 2
	}
	bench.Print(stdout, rep)
	if len(rep.Errors) > 0 {
		return 1
	}
	if *check {
		for _, s := range rep.Storms {
			if bad := s.Check(); len(bad) > 0 {
				fmt.Fprintf(stderr, "isolation bench: storm of %d: %s\n", s.Instances, strings.Join(bad, "; "))
				return 1
			}
		}
	}
	return 0
}
