package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ec2-isolation/ec2-isolation/internal/incident"
	"github.com/ec2-isolation/ec2-isolation/internal/status"
	"github.com/ec2-isolation/ec2-isolation/internal/verify"
)

const statusUsage = `usage: isolation status [--instance i-…] [--json] [flags]

Reads, changing nothing, every instance of the configured account and region that carries the isolation tag
key (either value), or the one instance asked for: its declared state (the tag's value: isolated or released),
whether it is in it (the same read-back as the workflow's "Verify containment" and the reconciler's: every ENI
on only its VPC's empty isolation group, the isolation profile its only profile) and what is open if not, its
incident (opened when, executions and outcomes), whether the credential revocation is in force, its snapshots.

Exit status: 0 every instance is in its declared state; 1 one is not; 2 bad flags, no region, the account or
the settings unreachable.

flags:
`

func parseStatusFlags(args []string, stderr io.Writer) (accountFlags, error) {
	return parseAccountFlags("status", statusUsage, args, stderr, false)
}

// statusCommand is `isolation status`.
func statusCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseStatusFlags(args, stderr)
	if code, done := flagsFailed("status", err, stderr); done {
		return code
	}
	acc, err := openUsableAccount(ctx, f)
	if err != nil {
		fmt.Fprintln(stderr, "isolation status:", err)
		return exitUsage
	}
	env := acc.env()
	vs, err := verify.SettingsFromEnv(env)
	if err != nil {
		fmt.Fprintln(stderr, "isolation status:", err)
		return exitUsage
	}
	s := status.Settings{Verify: vs, ReleaseValue: env("RELEASE_TAG_VALUE"), Bucket: acc.names.IncidentBucket,
		Account: acc.id.Account, Region: acc.cfg.Region}
	var s3c incident.S3API = s3.NewFromConfig(acc.cfg)
	rep, err := status.Read(ctx, ec2.NewFromConfig(acc.cfg), s3c, s, f.instance)
	if err != nil {
		fmt.Fprintln(stderr, "isolation status:", err)
		return exitUsage
	}
	if f.json {
		if err := writeJSON(stdout, rep); err != nil {
			fmt.Fprintln(stderr, "isolation status:", err)
			return exitUsage
		}
	} else {
		printStatus(stdout, rep, vs.TagKey, acc.id.ARN)
	}
	if !rep.OK() {
		return exitFailed
	}
	return exitOK
}

func printStatus(w io.Writer, rep status.Report, key, caller string) {
	fmt.Fprintf(w, "Status of the instances tagged %s in account %s (%s), as %s\n\n", key, rep.Account, rep.Region, caller)
	for _, in := range rep.Instances {
		mark := "in its declared state"
		if !in.InState {
			mark = "NOT in its declared state"
		}
		declared := in.Declared
		if declared == "" {
			declared = "nothing declared"
		}
		fmt.Fprintf(w, "%s (%s) %s=%s: %s, %s\n", in.ID, in.State, key, in.Tag, declared, mark)
		if in.Why != "" && !in.InState {
			fmt.Fprintf(w, "  why: %s\n", in.Why)
		}
		for _, o := range in.Open {
			fmt.Fprintf(w, "  open: %s\n", o)
		}
		if inc := in.Incident; inc != nil {
			state := "open"
			if inc.ReleasedAt != nil {
				state = "released " + inc.ReleasedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "  incident: opened %s, %s\n", inc.OpenedAt.UTC().Format(time.RFC3339), state)
			for _, e := range inc.Executions {
				fmt.Fprintf(w, "    %s %s %s (started %s)\n", e.Workflow, e.Name, e.Outcome, e.StartedAt.UTC().Format(time.RFC3339))
			}
		} else {
			fmt.Fprintln(w, "  incident: none")
		}
		fmt.Fprintf(w, "  revocation: %s\n", in.Revocation)
		fmt.Fprintf(w, "  snapshots: %s\n", orNone(in.Snapshots))
	}
	noun := "instances"
	if len(rep.Instances) == 1 {
		noun = "instance"
	}
	fmt.Fprintf(w, "\n%d %s: %d in their declared state, %d not\n", len(rep.Instances), noun, rep.InState, rep.NotInState)
	if !rep.OK() {
		fmt.Fprintln(w, "Not in state: "+strings.Join(notInState(rep), ", "))
	}
}

func notInState(rep status.Report) []string {
	var out []string
	for _, in := range rep.Instances {
		if !in.InState {
			out = append(out, in.ID)
		}
	}
	return out
}
