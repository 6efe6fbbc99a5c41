package bench

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Print writes the report as Markdown tables (docs/PERFORMANCE.md takes them as they are).
func Print(w io.Writer, r *Report) {
	o := r.Options
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("Machine: %s, %d cores, %s, %s\n\n", r.Machine.CPU, r.Machine.Cores, r.Machine.Go, r.Machine.OSArch)
	for _, k := range sortedKeys(o.Env) {
		p("Environment override: %s=%s\n\n", k, o.Env[k])
	}

	if len(r.Paths) > 0 {
		p("### 1. Containment path\n\n")
		p("Every simulated AWS answer after %v; Lambda invoke overhead %v per invocation; Step Functions %v per state transition.\n\n",
			o.Latency, o.Costs.Invoke, o.Costs.Transition)
		p("| path | ENIs | sequential AWS round trips | time to contained (simulated) | AWS calls by then |\n|---|---|---|---|---|\n")
		for _, x := range r.Paths {
			if x.Refused != "" {
				p("| %s | %d | refused | — | %d: %s |\n", x.Label, x.ENIs, x.Calls, x.Refused)
				continue
			}
			p("| %s | %d | %d | %v | %d |\n", x.Label, x.ENIs, x.RoundTrips, ms(x.Time), x.Calls)
		}
		p("\n")
	}
	if len(r.ColdStarts) > 0 {
		p("### 2. Cold start (process start -> first response, median of %d)\n\n", o.Runs)
		p("Built like the Makefile for %s in %v (one `go build ./functions/...`).\n\n", r.Machine.OSArch, r.Build.Round(100*time.Millisecond))
		p("| function | median | min | max | binary | first answer | event |\n|---|---|---|---|---|---|---|\n")
		for _, c := range r.ColdStarts {
			size := "—"
			if c.Size > 0 {
				size = fmt.Sprintf("%.1f MB", float64(c.Size)/1e6)
			}
			p("| %s | %v | %v | %v | %s | %s | %s |\n", c.Function, ms(c.Median), ms(c.Min), ms(c.Max), size,
				strings.ReplaceAll(c.Kind, "|", "/"), c.Event)
		}
		p("\n")
	}
	for _, s := range r.Storms {
		conc := "no reservation"
		if s.Concurrency > 0 {
			conc = fmt.Sprintf("reserved %d per function (Lambda.TooManyRequestsException beyond)", s.Concurrency)
		}
		if s.AccountConcurrency > 0 {
			conc += fmt.Sprintf(", account concurrency %d", s.AccountConcurrency)
		}
		adm := "every execution started at the tag"
		if s.Window > 0 {
			adm = fmt.Sprintf("admission window %d (at most %d executions running, started in tag order)", s.Window, s.Window)
		}
		p("### 3. Storm: %d instances tagged at once; %s; evidence window %d (stage 2); Lambda: %s\n\n", s.Instances, adm, s.EvidenceWindow, conc)
		speed := fmt.Sprintf("x%g", s.Factor)
		if s.TailFactor > 0 {
			speed += fmt.Sprintf(" (x%g from %v, once every isolation had ended)", s.TailFactor, sec(s.StageOneEnded))
		}
		p("EC2's documented token buckets, %v latency, the same invoke/transition costs; simulated clock %s: %v real, of which %v CPU-starved and kept out of simulated time (longest stretch %v).\n\n",
			o.Latency, speed, s.Real.Round(time.Second), s.Excluded.Round(100*time.Millisecond), s.LagMax.Round(time.Millisecond))
		p("| figure | value |\n|---|---|\n")
		p("| isolated (every ENI only on the isolation group, read back) | %d / %d |\n", s.Isolated, s.Instances)
		p("| failed executions | %d%s |\n", s.Failed, failedBy(s.FailedBy))
		p("| evidence complete (termination protection, shutdown stop, volumes kept; read back) | %d / %d |\n", s.Evidence, s.Instances)
		p("| snapshot of every volume / incident record | %d / %d |\n", s.Snapshots, s.Records)
		if len(s.EvidenceMissing) > 0 {
			p("| missing, e.g. | %s |\n", strings.Join(s.EvidenceMissing, "; "))
		}
		p("| AWS calls (HTTP requests) | %d |\n", s.Calls)
		p("| SDK operations / SDK retries | %d / %d |\n", s.Operations, s.Calls-s.Operations)
		p("| throttled answers (RequestLimitExceeded) | %d%s |\n", s.Throttled, byCount(s.ThrottledBy, 5))
		p("| state machine Task retries | %d |\n", s.StateRetries)
		if s.MostRetries > 0 {
			// The margin to the budgets: a Task fails once one retrier's MaxAttempts is spent (the isolation
			// definition gives throttling 30, an association settling 10).
			p("| most retries of one Task in one execution (its state, the error retried last) | %d (%s) |\n", s.MostRetries, s.MostRetriesAt)
		}
		p("| Lambda invocations refused (concurrency) / most in flight at once | %d / %d |\n", s.LambdaRefused, s.LambdaPeak)
		p("| state transitions, most in one second (quota %g/s) | %d |\n", stateTransitionBucket.RefillPerSecond, s.TransitionsPeak)
		if s.Window > 0 {
			p("| last isolation started (tag -> StartExecution) | %v |\n", sec(s.AdmittedLast))
		}
		p("| evidence jobs sent / evidence executions (stage 2) | %d / %d |\n", s.EvidenceSent, s.EvidenceExecutions)
		p("| stage 2's AWS calls (past their bucket) / stage 1's ModifyInstanceAttribute calls | %s / %d |\n", strings.TrimSuffix(strings.TrimPrefix(byCount(s.Stage2Calls, 6), " ("), ")"), s.StageOneModifies)
		p("| last evidence execution started (tag -> StartExecution) | %v |\n", sec(s.EvidenceAdmittedLast))
		cb := s.ContainBound
		p("| **containment**: makespan, tag -> last instance contained | %v |\n", sec(s.Containment))
		p("| ModifyNetworkInterfaceAttribute bound, (%d − %g) / %g per s | %v |\n", cb.Calls, cb.Bucket.Capacity, cb.Bucket.RefillPerSecond, sec(cb.Time))
		p("| containment makespan / that bound (goal <= 1.1; not checked) | %s |\n", ratio(s.Containment, cb.Time))
		if sb := s.Stage1Bound; sb.Time > 0 {
			p("| stage 1's binding bucket: %s, (%d − %g) / %g per s | %v |\n", sb.Action, sb.Calls, sb.Bucket.Capacity, sb.Bucket.RefillPerSecond, sec(sb.Time))
			p("| containment makespan / (that bound + the first containment, %v) (goal <= 1.1; not checked) | %s |\n", sec(s.FirstContained), ratio(s.Containment, sb.Time+s.FirstContained))
		}
		p("| time to containment (tag -> contained) p50 / p99 | %v / %v |\n", sec(s.P50), sec(s.P99))
		p("| p50 / containment makespan (checked: <= 0.55) | %s |\n", ratio(s.P50, s.Containment))
		eb := s.EvidenceBound
		p("| **evidence**: tag -> last evidence execution ended | %v |\n", sec(s.EvidenceMakespan))
		p("| ModifyInstanceAttribute bound, (%d − %g) / %g per s: the stated bound | %v |\n", eb.Calls, eb.Bucket.Capacity, eb.Bucket.RefillPerSecond, sec(eb.Time))
		p("| evidence complete / that bound | %s |\n", ratio(s.EvidenceMakespan, eb.Time))
		p("| evidence complete / (that bound + the shortest evidence execution, %v) (checked: <= 1.1) | %s |\n", sec(s.EvidenceShortest), ratio(s.EvidenceMakespan, eb.Time+s.EvidenceShortest))
		p("| **makespan**, tag -> all executions ended (simulated) | %v |\n", sec(s.Makespan))
		if bb := s.Binding(); bb.Time > 0 {
			p("| binding bucket: %s, (%d − %g) / %g per s | %v |\n", bb.Action, bb.Calls, bb.Bucket.Capacity, bb.Bucket.RefillPerSecond, sec(bb.Time))
			p("| makespan / that bound | %s |\n", ratio(s.Makespan, bb.Time))
			p("| makespan / (that bound + the shortest isolation, %v) (checked: <= 1.1) | %s |\n", sec(s.Shortest), ratio(s.Makespan, bb.Time+s.Shortest))
		}
		listBounds := func(what string, bounds []Bound, n int) {
			var bs []string
			for i, b := range bounds {
				if i == n || b.Time == 0 {
					break
				}
				bs = append(bs, fmt.Sprintf("%s %d calls at %g/%g per s → %v", b.Action, b.Calls, b.Bucket.Capacity,
					b.Bucket.RefillPerSecond, sec(b.Time)))
			}
			if len(bs) > 0 {
				p("| %s | %s |\n", what, strings.Join(bs, "; "))
			}
		}
		listBounds("mutating actions' bounds", s.Bounds, 8)
		listBounds("largest non-mutating bounds", s.ReadBounds, 4)
		if len(s.ReadBounds) > 0 && len(s.ReadCallers) > 0 {
			p("| %s's calls by function | %s |\n", s.ReadBounds[0].Action, strings.TrimSuffix(strings.TrimPrefix(byCount(s.ReadCallers, 8), " ("), ")"))
		}
		p("\n")
		if bad := s.Check(); len(bad) > 0 {
			p("Properties not met: %s.\n\n", strings.Join(bad, "; "))
		} else {
			p("Properties met (checked by -check): all contained, 0 failed, evidence complete; p50 <= %g x containment makespan; evidence complete <= %g x ModifyInstanceAttribute's bound; makespan <= %g x the binding bound.\n\n",
				fairGoal, boundGoal, boundGoal)
		}
		if slow := s.Unchecked(); len(slow) > 0 {
			p("Goal not met (reported, not checked): %s.\n\n", strings.Join(slow, "; "))
		} else {
			p("Goals met: containment makespan <= %g x ModifyNetworkInterfaceAttribute's bound and stage 1's binding bound.\n\n", boundGoal)
		}
		for _, k := range sortedKeys(s.FailedBy) {
			p("- %s, e.g.: `%s`\n", k, strings.ReplaceAll(s.FailureCause[k], "`", "'"))
		}
		if len(s.FailedBy) > 0 {
			p("\n")
		}
	}
	if r.Cost != nil {
		p("### 4. Cost (us-east-1 list prices read %s)\n\n", pricesRead)
		p("Step Functions Standard $0.025 per 1,000 state transitions; Lambda Arm $0.0000133334 per GB-second and $0.20 per million requests; MemorySize %d MB (template.yaml).\n\n", r.Memory)
		p("| run | state transitions / isolation | invocations / isolation | billed Lambda time / isolation | Step Functions / 1,000 | Lambda / 1,000 | total / 1,000 |\n|---|---|---|---|---|---|---|\n")
		row := func(name string, c *Cost) {
			p("| %s | %.1f | %.1f | %v | $%.3f | $%.4f | $%.3f |\n", name, c.Transitions, c.Invocations, ms(c.Billed),
				c.StepFunctions, c.Lambda, c.Total)
		}
		row("one isolation (warm VPC, multi-ENI instance)", r.Cost)
		for i, s := range r.Storms {
			c := r.StormCosts[i]
			row(fmt.Sprintf("storm mean, concurrency %d (%d executions, retries included)", s.Concurrency, s.Instances), &c)
		}
		p("\n")
	}
	for _, e := range r.Errors {
		p("ERROR: %s\n", e)
	}
	p("Wall time of the bench: %v\n", r.Wall.Round(100*time.Millisecond))
}

func failedBy(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s × %d", k, m[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
}

func sec(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", a.Seconds()/b.Seconds())
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// byCount lists the n largest counts: " (A × 3, B × 2)".
func byCount(m map[string]int, n int) string {
	ks := sortedKeys(m)
	sort.SliceStable(ks, func(i, j int) bool { return m[ks[i]] > m[ks[j]] })
	if len(ks) > n {
		ks = ks[:n]
	}
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s × %d", k, m[k]))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
