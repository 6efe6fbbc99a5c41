package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const recordUsage = `usage: isolation record --instance i-… [--json] [flags]

Prints the instance's incident record from the incident bucket (s3://BUCKET/incidents/ACCOUNT/REGION/ID.json):
each incident's pre-isolation state, its executions, every change made and the snapshots. --json prints the
record as stored. Changes nothing.

Exit status: 0 printed; 1 the instance has no record; 2 bad flags, the account, the settings or the bucket
unreachable.

flags:
`

func parseRecordFlags(args []string, stderr io.Writer) (accountFlags, error) {
	return parseAccountFlags("record", recordUsage, args, stderr, true)
}

// recordCommand is `isolation record`.
func recordCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseRecordFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fail := func(code int, err error) int { fmt.Fprintln(stderr, "isolation record:", userFacing(err)); return code }
	if err != nil {
		return fail(exitUsage, err)
	}
	acc, err := openUsableAccount(ctx, f)
	if err != nil {
		return fail(exitUsage, err)
	}
	bucket := acc.names.IncidentBucket
	key := workflow.IncidentKey(acc.id.Account, acc.cfg.Region, f.instance)
	out, err := s3.NewFromConfig(acc.cfg, quietS3).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if code := steperr.Code(err); code == "NoSuchKey" || code == "NotFound" {
		return fail(exitFailed, fmt.Errorf("%s has no incident record (s3://%s/%s): it was never isolated by this stack in %s", f.instance, bucket, key, acc.cfg.Region))
	}
	if err != nil {
		return fail(exitUsage, fmt.Errorf("read s3://%s/%s: %w", bucket, key, err))
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return fail(exitUsage, fmt.Errorf("read s3://%s/%s: %w", bucket, key, err))
	}
	var file workflow.IncidentFile
	if err := json.Unmarshal(data, &file); err != nil {
		return fail(exitUsage, fmt.Errorf("s3://%s/%s%s is not an incident record: %w", bucket, key, where(data, err), err))
	}
	if f.json {
		if err := writeJSON(stdout, file); err != nil {
			return fail(exitUsage, err)
		}
		return exitOK
	}
	fmt.Fprintf(stdout, "Incident record of %s: s3://%s/%s (version %s)\n", f.instance, bucket, key, orDash(aws.ToString(out.VersionId)))
	printIncidents(stdout, file)
	return exitOK
}

// printIncidents prints the record for a person, newest incident last.
func printIncidents(w io.Writer, file workflow.IncidentFile) {
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	for i, inc := range file.Incidents {
		status := "OPEN (the instance is isolated)"
		if inc.ReleasedAt != nil {
			status = "released " + stamp(*inc.ReleasedAt)
		}
		fmt.Fprintf(w, "\nIncident %d of %d: opened %s, %s\n", i+1, len(file.Incidents), stamp(inc.OpenedAt), status)
		pre := inc.PreIsolation
		rec := pre.Record
		if pre.Missing != "" {
			fmt.Fprintf(w, "  Pre-isolation state: UNKNOWN (%s); what was seen:\n", pre.Missing)
		} else {
			fmt.Fprintf(w, "  Pre-isolation state (read %s):\n", stamp(rec.RecordedAt))
		}
		for _, n := range rec.NetworkInterfaces {
			fmt.Fprintf(w, "    %s in %s: %s\n", n.ID, n.VpcID, orNone(n.Groups))
		}
		profile := "none"
		if a := rec.ProfileAssociation; a != nil {
			profile = a.ProfileARN
		}
		fmt.Fprintf(w, "    instance profile: %s\n", profile)
		fmt.Fprintf(w, "    termination protection: %s, shutdown behaviour: %s\n", onOff(rec.DisableAPITermination), orDash(rec.ShutdownBehavior))
		for _, v := range rec.Volumes {
			fmt.Fprintf(w, "    %s (%s): delete on termination %s\n", v.VolumeID, v.DeviceName, onOff(v.DeleteOnTermination))
		}
		if a := pre.AutoScaling; a != nil {
			fmt.Fprintf(w, "    Auto Scaling group: %s (%s)\n", a.GroupName, a.LifecycleState)
		}
		for _, t := range pre.TargetGroups {
			fmt.Fprintf(w, "    target group: %s port %d\n", t.TargetGroupARN, t.Port)
		}
		fmt.Fprintf(w, "  %s:\n", count(len(inc.Executions), "execution", "executions"))
		for _, e := range inc.Executions {
			outcome := e.Outcome
			if outcome == "" {
				outcome = "running (no outcome recorded)"
			}
			fmt.Fprintf(w, "    %s %s %s: %s\n", stamp(e.StartedAt), e.Workflow, e.ExecutionName, outcome)
			for _, fl := range e.Failures {
				fmt.Fprintf(w, "      failed at %q: %s\n", fl.State, fl.Error)
			}
		}
		fmt.Fprintf(w, "  %s:\n", count(len(inc.Changes), "change", "changes"))
		for _, c := range inc.Changes {
			fmt.Fprintf(w, "    %s %s %s %s", stamp(c.At), c.Step, c.Action, c.Resource)
			if c.Detail != "" {
				fmt.Fprintf(w, ": %s", oneLine(c.Detail, 200))
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "  %s:\n", count(len(inc.Snapshots), "snapshot", "snapshots"))
		for _, s := range inc.Snapshots {
			fmt.Fprintf(w, "    %s of %s\n", s.SnapshotID, s.VolumeID)
		}
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// count is "1 thing" or "n things".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// quietS3: a record written without a checksum (an emulator) is read without the SDK's log line saying so.
func quietS3(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true }
