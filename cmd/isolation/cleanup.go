package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ec2-isolation/ec2-isolation/internal/credentials"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// cleanupNow is the clock that says whether a released policy has expired (a test moves it on).
var cleanupNow = time.Now

type cleanupFlags struct {
	accountFlags
	deleteSnapshots, yes bool
}

func parseCleanupFlags(args []string, stderr io.Writer) (cleanupFlags, error) {
	var f cleanupFlags
	fs := flag.NewFlagSet("cleanup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: isolation cleanup [--instance i-…] [--delete-snapshots [--yes]] [flags]

What closed incidents (released instances) leave behind, from the incident records in the bucket: lists the
snapshots and the credential policies that remain, removes the released credential policies whose time has
passed (a release replaces the revoking policy with one denying the credentials issued before it, for 36 hours),
and deletes the snapshots of closed incidents only with --delete-snapshots, after confirmation (or --yes).
Nothing of an open incident (an instance still isolated) is ever touched.

Exit status: 0 done; 1 something could not be read or removed; 2 bad flags, the account or the settings
unreachable; 3 not confirmed.

flags:
`)
		fs.PrintDefaults()
	}
	f.register(fs)
	fs.BoolVar(&f.deleteSnapshots, "delete-snapshots", false, "also delete the snapshots of closed incidents (the evidence: asks first)")
	fs.BoolVar(&f.yes, "yes", false, "do not ask before deleting snapshots")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return f, f.check(false)
}

// leftover is one thing a closed incident left behind, and what cleanup did with it.
type leftover struct {
	InstanceID string `json:"instanceId"`
	// Kind is "snapshot", "policy" (a credential policy on a role) or "open" (an open incident: left alone).
	Kind     string `json:"kind"`
	Resource string `json:"resource"`
	// Action: "kept" (with Why), "removed", "deleted", "failed".
	Action string `json:"action"`
	Why    string `json:"why,omitempty"`
}

// cleanupCommand is `isolation cleanup`.
func cleanupCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	f, err := parseCleanupFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fail := func(code int, err error) int {
		fmt.Fprintln(stderr, "isolation cleanup:", userFacing(err))
		return code
	}
	if err != nil {
		return fail(exitUsage, err)
	}
	acc, err := openUsableAccount(ctx, f.accountFlags)
	if err != nil {
		return fail(exitUsage, err)
	}
	files, err := incidentFiles(ctx, s3.NewFromConfig(acc.cfg, quietS3), acc, f.instance)
	if err != nil {
		return fail(exitUsage, err)
	}
	ec2c, iamc := ec2.NewFromConfig(acc.cfg), iam.NewFromConfig(acc.cfg)
	now := cleanupNow()
	var items []leftover
	var snapshots []leftover // of closed incidents, still there
	for _, file := range files {
		items = append(items, policyLeftover(ctx, iamc, file, now))
		snapshots = append(snapshots, closedSnapshots(ctx, ec2c, file)...)
	}
	if f.deleteSnapshots && len(snapshots) > 0 {
		question := fmt.Sprintf("Delete %s of closed incidents in account %s (%s)? They are the evidence; this cannot be undone.",
			count(len(snapshots), "snapshot", "snapshots"), acc.id.Account, acc.cfg.Region)
		if !f.yes && !confirm(stdin, stderr, question, "delete") {
			fmt.Fprintln(stderr, "isolation cleanup: not confirmed; no snapshot was deleted (--yes skips the question)")
			return exitDeclined
		}
		for i, s := range snapshots {
			_, err := ec2c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(s.Resource)})
			switch {
			case err == nil, steperr.Code(err) == "InvalidSnapshot.NotFound":
				snapshots[i].Action, snapshots[i].Why = "deleted", ""
			default:
				snapshots[i].Action, snapshots[i].Why = "failed", oneLine(err.Error(), 200)
			}
		}
	}
	items = append(items, snapshots...)
	var kept []leftover
	for _, it := range items {
		if it.Kind != "" {
			kept = append(kept, it)
		}
	}
	if f.json {
		if err := writeJSON(stdout, struct {
			Bucket    string     `json:"bucket"`
			Incidents int        `json:"records"`
			Leftovers []leftover `json:"leftovers"`
		}{acc.names.IncidentBucket, len(files), kept}); err != nil {
			return fail(exitUsage, err)
		}
	} else {
		fmt.Fprintf(stdout, "Cleanup of closed incidents in account %s (%s): %s in s3://%s\n", acc.id.Account, acc.cfg.Region,
			count(len(files), "incident record", "incident records"), acc.names.IncidentBucket)
		if len(kept) == 0 {
			fmt.Fprintln(stdout, "  nothing left behind")
		}
		for _, it := range kept {
			line := fmt.Sprintf("  %s %s %s: %s", it.InstanceID, it.Kind, it.Resource, it.Action)
			if it.Why != "" {
				line += " (" + it.Why + ")"
			}
			fmt.Fprintln(stdout, line)
		}
		if !f.deleteSnapshots && len(snapshots) > 0 {
			fmt.Fprintf(stdout, "\n%s of closed incidents kept: --delete-snapshots deletes them (asks first).\n", count(len(snapshots), "snapshot", "snapshots"))
		}
	}
	for _, it := range kept {
		if it.Action == "failed" {
			return exitFailed
		}
	}
	return exitOK
}

// incidentFiles reads the incident records of the account and region (one instance's when instance is set).
func incidentFiles(ctx context.Context, c *s3.Client, acc account, instance string) ([]workflow.IncidentFile, error) {
	bucket := acc.names.IncidentBucket
	prefix := "incidents/" + acc.id.Account + "/" + acc.cfg.Region + "/"
	if instance != "" {
		prefix = workflow.IncidentKey(acc.id.Account, acc.cfg.Region, instance)
	}
	var keys []string
	in := &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix)}
	for {
		out, err := c.ListObjectVersions(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, v := range out.Versions {
			if aws.ToBool(v.IsLatest) && strings.HasSuffix(aws.ToString(v.Key), ".json") {
				keys = append(keys, aws.ToString(v.Key))
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		in.KeyMarker, in.VersionIdMarker = out.NextKeyMarker, out.NextVersionIdMarker
	}
	var files []workflow.IncidentFile
	for _, k := range keys {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
		if err != nil {
			return nil, fmt.Errorf("read s3://%s/%s: %w", bucket, k, err)
		}
		data, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read s3://%s/%s: %w", bucket, k, err)
		}
		var f workflow.IncidentFile
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("s3://%s/%s%s is not an incident record: %w", bucket, k, where(data, err), err)
		}
		files = append(files, f)
	}
	return files, nil
}

func isOpen(f workflow.IncidentFile) bool {
	n := len(f.Incidents)
	return n > 0 && f.Incidents[n-1].ReleasedAt == nil
}

// policyLeftover is the instance's credential policy on its original role: removed once a released one has
// expired; a revoking one (the incident open) is never touched.
func policyLeftover(ctx context.Context, c *iam.Client, f workflow.IncidentFile, now time.Time) leftover {
	it := leftover{InstanceID: f.InstanceID, Kind: "policy"}
	if isOpen(f) {
		return leftover{InstanceID: f.InstanceID, Kind: "open", Resource: "incident", Action: "kept", Why: "the instance is isolated: nothing of an open incident is touched"}
	}
	if len(f.Incidents) == 0 {
		return leftover{}
	}
	a := f.Incidents[len(f.Incidents)-1].PreIsolation.Record.ProfileAssociation
	if a == nil {
		return leftover{}
	}
	profile := a.ProfileARN[strings.LastIndex(a.ProfileARN, "/")+1:]
	ip, err := c.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(profile)})
	if err != nil || len(ip.InstanceProfile.Roles) == 0 {
		if steperr.Code(err) == "NoSuchEntity" {
			return leftover{}
		}
		it.Resource, it.Action, it.Why = a.ProfileARN, "failed", "its role cannot be read: "+errText(err)
		return it
	}
	role := aws.ToString(ip.InstanceProfile.Roles[0].RoleName)
	name := credentials.PolicyName(f.InstanceID)
	it.Resource = "role " + role + " " + name
	doc, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name)})
	if steperr.Code(err) == "NoSuchEntity" {
		return leftover{}
	}
	if err != nil {
		it.Action, it.Why = "failed", errText(err)
		return it
	}
	until, _, released := credentials.ReleasedUntil(aws.ToString(doc.PolicyDocument))
	switch {
	case !released:
		it.Action, it.Why = "kept", "it still revokes the instance's credentials although the incident is closed: check the instance, remove it by hand"
	case now.Before(until):
		it.Action, it.Why = "kept", "denies the credentials issued before the release until "+until.UTC().Format(time.RFC3339)
	default:
		if _, err := c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name)}); err != nil && steperr.Code(err) != "NoSuchEntity" {
			it.Action, it.Why = "failed", errText(err)
		} else {
			it.Action, it.Why = "removed", "expired "+until.UTC().Format(time.RFC3339)
		}
	}
	return it
}

// closedSnapshots are the snapshots of the instance's closed incidents that still exist.
func closedSnapshots(ctx context.Context, c *ec2.Client, f workflow.IncidentFile) []leftover {
	var ids []string
	for _, inc := range f.Incidents {
		if inc.ReleasedAt == nil {
			continue // open: never touched
		}
		for _, s := range inc.Snapshots {
			ids = append(ids, s.SnapshotID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	out, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("snapshot-id"), Values: ids}}})
	if err != nil {
		return []leftover{{InstanceID: f.InstanceID, Kind: "snapshot", Resource: strings.Join(ids, ", "), Action: "failed", Why: errText(err)}}
	}
	var left []leftover
	for _, s := range out.Snapshots {
		left = append(left, leftover{InstanceID: f.InstanceID, Kind: "snapshot", Resource: aws.ToString(s.SnapshotId),
			Action: "kept", Why: "of " + aws.ToString(s.VolumeId) + ", a closed incident's evidence"})
	}
	return left
}

func errText(err error) string {
	if err == nil {
		return "none"
	}
	return oneLine(err.Error(), 200)
}
