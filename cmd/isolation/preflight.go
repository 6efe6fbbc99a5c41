package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ec2-isolation/ec2-isolation/internal/preflight"
)

const preflightUsage = `usage: isolation preflight [--instance i-…] [flags]

Checks, without changing anything, that the account and region of the standard AWS configuration could isolate
the instance: each mutating EC2 call of the workflow is made with DryRun (DryRunOperation = allowed), the
isolation profile, groups and topic resolve, the instance can be validated and recorded. Calls without a DryRun
parameter (instance profile associations, iam:PassRole, sns:Publish) go to the IAM policy simulator when the
caller may use it, else they are reported unverified. Without --instance only the account-wide checks run.

Exit status: 0 no check failed; 1 a check failed; 2 bad flags or no AWS configuration.

flags:
`

func parsePreflightFlags(args []string, stderr io.Writer) (accountFlags, error) {
	return parseAccountFlags("preflight", preflightUsage, args, stderr, false)
}

// preflightCommand is `isolation preflight`.
func preflightCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parsePreflightFlags(args, stderr)
	if code, done := flagsFailed("preflight", err, stderr); done {
		return code
	}
	acc, err := openAccount(ctx, f)
	if err != nil {
		fmt.Fprintln(stderr, "isolation preflight:", userFacing(err))
		return exitUsage
	}
	var rep preflight.Report
	if acc.namesErr != nil {
		// Nothing else can be checked without the names.
		rep = preflight.Report{Account: acc.id.Account, Region: acc.cfg.Region, Caller: acc.id.ARN, InstanceID: f.instance}
		if acc.idErr != nil {
			rep.Checks = append(rep.Checks, preflight.Check{Name: "caller identity", Status: preflight.Fail, Detail: acc.idErr.Error()})
		} else {
			rep.Checks = append(rep.Checks, preflight.Check{Name: "caller identity", Status: preflight.Pass, Detail: acc.id.ARN})
		}
		rep.Checks = append(rep.Checks, preflight.Check{Name: "settings", Status: preflight.Fail, Detail: acc.namesErr.Error(), Missing: deniedStack(acc.namesErr)})
	} else {
		rep = preflight.Run(ctx, preflightClients(acc.cfg), preflight.Input{
			Identity: acc.id, IdentityErr: acc.idErr, Names: acc.names, NamesFrom: acc.namesFrom, InstanceID: f.instance,
		})
	}
	if f.json {
		if err := writeJSON(stdout, rep); err != nil {
			fmt.Fprintln(stderr, "isolation preflight:", userFacing(err))
			return exitUsage
		}
	} else {
		printPreflight(stdout, rep)
	}
	if !rep.OK() {
		return exitFailed
	}
	return exitOK
}

// deniedStack names cloudformation:DescribeStacks when reading the stack was refused.
func deniedStack(err error) string {
	if s := err.Error(); strings.Contains(s, "AccessDenied") {
		return "cloudformation:DescribeStacks"
	}
	return ""
}

func printPreflight(w io.Writer, rep preflight.Report) {
	target := "an instance"
	if rep.InstanceID != "" {
		target = rep.InstanceID
	}
	fmt.Fprintf(w, "Preflight: could %s isolate %s in account %s (%s)?\n\n", orUnknown(rep.Caller), target, orUnknown(rep.Account), rep.Region)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  CHECK\tRESULT\tMISSING PERMISSION\tDETAIL")
	for _, c := range rep.Checks {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Name, c.Status, orDash(c.Missing), c.Detail)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d checks: %d pass, %d fail, %d unverified, %d skipped\n", len(rep.Checks),
		rep.Count(preflight.Pass), rep.Count(preflight.Fail), rep.Count(preflight.Unverified), rep.Count(preflight.Skipped))
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
