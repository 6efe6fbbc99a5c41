package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/inspect"
)

func printResult(w io.Writer, res result, showIO bool) {
	if res.Scenario != "" {
		fmt.Fprintf(w, "Scenario: %s\n", res.Scenario)
	} else {
		fmt.Fprintf(w, "Account: %s (%s), as %s\n", res.Account, res.Region, res.Caller)
	}
	for _, e := range res.Executions {
		printExecution(w, e, showIO)
	}
	for _, e := range res.Evidence {
		// Issue 16: the instance settings the isolation queued, applied after containment.
		line := fmt.Sprintf("\nEvidence execution %s (the instance settings it queued): %s in %s, %s", e.Name, e.Status, round(e.Duration), e.ARN)
		if e.Error != "" {
			line += fmt.Sprintf("\n  Error: %s\n  Cause: %s", e.Error, paramNames.Replace(oneLine(e.Cause, 300)))
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
	printInstance(w, "Before", res.InstanceID, res.Before)
	printInstance(w, "After", res.InstanceID, res.After)
	if res.Released != nil {
		printInstance(w, "Released", res.InstanceID, res.Released)
	}
	printRestored(w, res.Restored)
	fmt.Fprintf(w, "\nNotifications published: %d\n", len(res.Notifications))
	for i, n := range res.Notifications {
		fmt.Fprintf(w, "\n--- notification %d: %s\n%s\n", i+1, n.Subject, strings.TrimRight(n.Email, "\n"))
	}
	if res.Isolated != nil {
		if *res.Isolated {
			fmt.Fprintf(w, "\nIsolated: yes, %s is contained.\n", res.InstanceID)
		} else {
			fmt.Fprintf(w, "\nIsolated: NO, %s is not contained:\n", res.InstanceID)
			for _, p := range res.Problems {
				fmt.Fprintf(w, "  - %s\n", p)
			}
		}
	}
}

func printExecution(w io.Writer, e executionReport, showIO bool) {
	title := "Execution"
	if e.RedriveCount > 0 {
		title = fmt.Sprintf("Redrive %d of execution", e.RedriveCount)
	}
	fmt.Fprintf(w, "\n%s %s: %s in %s\n  %s\n", title, e.Name, e.Status, round(e.Duration), e.ARN)
	if e.Error != "" {
		fmt.Fprintf(w, "  Error: %s\n  Cause: %s\n", e.Error, paramNames.Replace(oneLine(e.Cause, 300)))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  STATE\tTYPE\tSTATUS\tSTARTED\tDURATION\tRETRIES\tERROR")
	var t0 time.Time
	if len(e.States) > 0 {
		t0 = e.States[0].Start
	}
	for _, s := range e.States {
		name := s.Name
		if s.Parallel != "" {
			name = fmt.Sprintf("  %s [branch %d] %s", s.Parallel, s.Branch+1, s.Name)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t+%s\t%s\t%d\t%s\n", name, s.Type, s.Status, round(s.Start.Sub(t0)),
			round(s.Duration), s.Retries, s.Error)
		if showIO {
			tw.Flush()
			fmt.Fprintf(w, "      input:  %s\n      output: %s\n", compact(s.Input), compact(s.Output))
		}
	}
	tw.Flush()
}

func printInstance(w io.Writer, when, id string, in *inspect.Instance) {
	switch {
	case id == "":
		fmt.Fprintf(w, "%s: the event names no instance\n", when)
		return
	case in == nil:
		fmt.Fprintf(w, "%s: instance %s is not in the account\n", when, id)
		return
	}
	fmt.Fprintf(w, "%s: instance %s (%s)\n", when, in.ID, in.State)
	for _, n := range in.NetworkInterfaces {
		fmt.Fprintf(w, "  %s in %s: %s\n", n.ID, n.VpcID, orNone(n.Groups))
	}
	fmt.Fprintf(w, "  instance profile: %s\n", orNone(in.Profiles))
	fmt.Fprintf(w, "  isolation snapshots: %s\n", orNone(in.Snapshots))
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func round(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// maxIO is the most of a state's input or output --io prints on one line: a state's data runs to kilobytes (the
// whole record, the instance's description), which would bury the table; --json has all of it.
const maxIO = 300

func compact(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "-"
	}
	var b bytes.Buffer
	s := string(raw)
	if json.Compact(&b, raw) == nil {
		s = b.String()
	}
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxIO {
		s = fmt.Sprintf("%s… (%d bytes in all; --json prints everything)", string(r[:maxIO]), len(s))
	}
	return s
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
