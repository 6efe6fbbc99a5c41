// Package bench is `isolation bench`: the containment path's round trips and time against a simulator with a
// fixed latency (the product beside the article's single function), the functions' cold starts through a
// loopback Lambda Runtime API emulator (beside a Python/boto3 function), a storm of 1,000 isolations against
// EC2's token buckets, and the cost per 1,000 isolations. All figures come from one run; docs/PERFORMANCE.md
// says how each is measured.
package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/stackenv"
	"github.com/ec2-isolation/ec2-isolation/internal/template"
)

// Options of a bench run.
type Options struct {
	// Repo is the repository root: template.yaml and functions/.
	Repo string
	// Scenario is the base scenario (JSON): isolation simulate's default. Event is the sample tag event.
	Scenario, Event []byte
	// Latency of every simulated AWS answer on the containment path and in the storm.
	Latency time.Duration
	Costs   Costs
	// Runs of each cold start (median); PathRuns of each containment path row (median time).
	Runs, PathRuns int
	// Storm is the number of instances tagged at once; StormFactor how much faster than real time its simulated
	// clock runs. The storm runs once per Concurrency: each function's reserved concurrency (0: unlimited, -1:
	// template.yaml's FunctionConcurrency default).
	Storm       int
	StormFactor float64
	// TailFactor is the storm clock's speed once every isolation has ended and only evidence executions are
	// left (a few at once: little CPU); 0: StormFactor throughout.
	TailFactor  float64
	Concurrency []int
	// Window is the admission window: at most this many executions run at once, started in tag order (the
	// admission queue and starter; 0: every execution starts at the tag). AccountConcurrency is the account's
	// Lambda concurrency, shared by the functions without a reservation (0: unlimited).
	Window, AccountConcurrency int
	// EvidenceWindow is stage 2's admission window: at most this many evidence executions run at once (the
	// stack's EvidenceWindow; negative: template.yaml's default, or 4 without one).
	EvidenceWindow int
	// Env overrides the functions' environment (stack parameters), e.g. REVOKE_CREDENTIALS=false.
	Env map[string]string
	// Only, when not empty, runs only these parts: path, coldstart, storm (cost needs path).
	Only map[string]bool
	// HeapProfile, when set, is a file the storm writes a heap profile to while its executions' results are
	// still held (go tool pprof).
	HeapProfile string
	// Progress receives one line per step (stderr).
	Progress io.Writer
}

// defaultEvidenceWindow is design16.md's EvidenceWindow default, used while template.yaml has no such parameter.
const defaultEvidenceWindow = 4

type bench struct {
	opts Options
	tmpl *template.Template
	dep  deployment
	env  map[string]string
}

// Report is everything one run measured.
type Report struct {
	Machine    Machine
	Options    Options
	Paths      []PathResult
	ColdStarts []ColdStart
	Build      time.Duration
	Storms     []StormResult
	Cost       *Cost
	StormCosts []Cost
	Memory     int
	Wall       time.Duration
	Errors     []string
}

// Run runs the bench and returns its report; a part that fails is reported in Errors and the others still run.
func Run(ctx context.Context, o Options) (*Report, error) {
	began := time.Now()
	t, err := template.Load(filepath.Join(o.Repo, "template.yaml"))
	if err != nil {
		return nil, err
	}
	b := &bench{opts: o, tmpl: t}
	sc, err := b.baseScenario()
	if err != nil {
		return nil, fmt.Errorf("base scenario: %w", err)
	}
	// The runner's environment is the stack's defaults (stackenv, as isolation simulate); each binary gets the
	// variables template.yaml gives its function, with those values.
	b.env = stackenv.ForSim(sc, region(sc), account(sc), o.Env)
	b.dep = readDeployment(t, sc)
	for _, env := range b.dep.Env {
		for k := range env {
			if v, ok := b.env[k]; ok {
				env[k] = v
			}
		}
	}
	rep := &Report{Machine: machine(), Options: o, Memory: b.memory("apply-security-group")}
	part := func(name string) bool { return len(o.Only) == 0 || o.Only[name] }
	fail := func(what string, err error) {
		rep.Errors = append(rep.Errors, what+": "+err.Error())
		b.progress("%s: FAILED: %v", what, err)
	}

	if part("path") {
		for _, row := range []struct {
			article, patient, warm bool
			enis                   int
		}{
			{false, false, true, 1}, {false, false, false, 1},
			{true, false, true, 1}, {true, true, true, 1}, {true, true, false, 1},
			{false, false, true, 0}, {false, false, false, 0}, {true, true, true, 0},
		} {
			r, err := b.pathRow(ctx, row.article, row.patient, row.warm, row.enis)
			if err != nil {
				fail(fmt.Sprintf("containment path (article %v, warm %v, ENIs %d)", row.article, row.warm, row.enis), err)
				continue
			}
			b.progress("path: %s, %d ENI: %d round trips, %v", r.Label, r.ENIs, r.RoundTrips, r.Time.Round(time.Millisecond))
			rep.Paths = append(rep.Paths, r)
		}
		for _, p := range rep.Paths {
			if p.Label == label("product", true) && p.ENIs > 1 {
				c := cost(1, p.Transitions, p.Invocations, b.memory)
				rep.Cost = &c
			}
		}
	}
	if part("coldstart") {
		b.progress("cold start: building functions/... for %s/%s", runtime.GOOS, runtime.GOARCH)
		cs, build, err := b.coldStarts(ctx)
		if err != nil {
			fail("cold start", err)
		}
		rep.ColdStarts, rep.Build = cs, build
	}
	if part("storm") {
		if b.opts.EvidenceWindow < 0 {
			b.opts.EvidenceWindow = defaultEvidenceWindow
			if w, ok := asInt(t.Parameters["EvidenceWindow"]["Default"]); ok {
				b.opts.EvidenceWindow = w
			}
			rep.Options.EvidenceWindow = b.opts.EvidenceWindow
		}
		for _, conc := range o.Concurrency {
			if conc < 0 {
				conc, _ = asInt(t.Parameters["FunctionConcurrency"]["Default"])
			}
			b.progress("storm: %d instances, simulated clock x%g, reserved concurrency %d", o.Storm, o.StormFactor, conc)
			s, err := b.storm(ctx, conc)
			if err != nil {
				fail("storm", err)
				continue
			}
			rep.Storms = append(rep.Storms, s)
			rep.StormCosts = append(rep.StormCosts, cost(s.Instances, s.Transitions, s.Invocations, b.memory))
			b.progress("storm: %d/%d isolated, %d failed, makespan %v (real %v)", s.Isolated, s.Instances, s.Failed,
				s.Makespan.Round(time.Second), s.Real.Round(time.Second))
		}
	}
	rep.Wall = time.Since(began)
	return rep, nil
}

// pathRow runs a containment path row PathRuns times and keeps the run with the median time.
func (b *bench) pathRow(ctx context.Context, article, patient, warm bool, enis int) (PathResult, error) {
	var runs []PathResult
	for range max(1, b.opts.PathRuns) {
		var r PathResult
		var err error
		ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		if article {
			r, err = b.articlePath(ctx, warm, patient, enis)
		} else {
			r, err = b.productPath(ctx, warm, enis)
		}
		cancel()
		if err != nil {
			return r, err
		}
		runs = append(runs, r)
		if r.Refused != "" {
			break
		}
	}
	// The median by time (the round trips do not vary between runs of one row).
	for i := range runs {
		for j := i + 1; j < len(runs); j++ {
			if runs[j].Time < runs[i].Time {
				runs[i], runs[j] = runs[j], runs[i]
			}
		}
	}
	return runs[len(runs)/2], nil
}

func (b *bench) progress(format string, args ...any) {
	if b.opts.Progress != nil {
		fmt.Fprintf(b.opts.Progress, "bench: "+format+"\n", args...)
	}
}

func (b *bench) baseScenario() (sim.Scenario, error) {
	sc, err := sim.ParseScenario(b.opts.Scenario)
	if err != nil {
		return sc, err
	}
	if len(sc.Instances) == 0 || len(sc.Instances[0].NetworkInterfaces) == 0 {
		return sc, fmt.Errorf("the base scenario's first instance has no ENI")
	}
	return sc, nil
}

func (b *bench) groupName() string {
	if n := b.env["ISOLATION_GROUP_NAME"]; n != "" {
		return n
	}
	return "ec2-isolation-quarantine"
}

func (b *bench) profileName() string {
	if n := b.env["ISOLATION_PROFILE_NAME"]; n != "" {
		return n
	}
	return "ec2-isolation-quarantine"
}

// Machine is where the bench ran.
type Machine struct {
	CPU    string
	Cores  int
	Go     string
	OSArch string
}

func machine() Machine {
	m := Machine{CPU: "unknown", Cores: runtime.NumCPU(), Go: runtime.Version(), OSArch: runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}
