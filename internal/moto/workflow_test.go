package moto_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/moto"
	"github.com/ec2-isolation/ec2-isolation/internal/preflight"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
)

// names are the stack settings of the seeded account.
func names(s moto.Seeded, mode secgroup.Mode) preflight.Names {
	return preflight.Names{
		GroupName: moto.IsolationGroupName, ProfileName: moto.IsolationProfileName, TopicARN: s.TopicARN,
		IncidentBucket: moto.BucketName,
		TagKey:         preflight.DefaultTagKey, TagValue: preflight.DefaultTagValue, Tracking: mode,
	}
}

// execute runs the real definition with the real handlers against moto, as `isolation run` does.
func execute(t *testing.T, s *moto.Server, rec *recorder, n preflight.Names, instanceID, name string) *asl.Execution {
	t.Helper()
	env := n.Env()
	r, err := runner.New(runner.Config{
		Definition: ec2isolation.Definition,
		Region:     moto.Region,
		Account:    moto.AccountID,
		AWS:        func(string) aws.Config { return rec.config(s.Config("", "")) },
		Env:        func(k string) string { return env[k] },
		Log:        slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("runner: %v", err)
	}
	id := preflight.Identity{Account: moto.AccountID, Partition: "aws"}
	input, err := json.Marshal(preflight.Event(id, moto.Region, instanceID, n, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	return r.Start(context.Background(), name, input)
}

func TestWorkflowIsolatesOnMoto(t *testing.T) {
	for _, mode := range []secgroup.Mode{secgroup.ModeDirect, secgroup.ModeUntrackFirst} {
		t.Run(string(mode), func(t *testing.T) {
			s := server(t)
			seeded, c := seed(t, s, moto.SeedOptions{})
			rec := &recorder{}
			n := names(seeded, mode)

			e := execute(t, s, rec, n, seeded.InstanceID, "exec-1")
			if e.Status != asl.StatusSucceeded {
				t.Fatalf("execution %s: %s %s", e.Status, e.Error, e.Cause)
			}
			problems, err := moto.Verify(context.Background(), c, seeded)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Error(p)
			}

			// A second tag event: a new execution finds everything contained and preserved; it only takes its own
			// snapshot set, joins the open incident in the record (pre-isolation state kept), records its outcome
			// and notifies.
			rec.reset()
			e = execute(t, s, rec, n, seeded.InstanceID, "exec-2")
			if e.Status != asl.StatusSucceeded {
				t.Fatalf("second execution %s: %s %s", e.Status, e.Error, e.Cause)
			}
			if diff := cmp.Diff([]string{"EC2:CreateSnapshots", "S3:PutObject", "S3:PutObject", "SNS:Publish"}, rec.mutating()); diff != "" {
				t.Errorf("mutating calls of the second execution (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWorkflowFailureIsNotifiedAndContainsTheNetworkOnMoto(t *testing.T) {
	s := server(t)
	seeded, c := seed(t, s, moto.SeedOptions{NoIsolationProfile: true})
	rec := &recorder{}
	e := execute(t, s, rec, names(seeded, secgroup.ModeDirect), seeded.InstanceID, "exec-1")
	if e.Status != asl.StatusFailed || e.Error != "IsolationFailed" {
		t.Fatalf("execution %s %s, want FAILED IsolationFailed", e.Status, e.Error)
	}
	msgs, err := moto.ReadNotifications(context.Background(), c.SQS, seeded.QueueURL)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || !strings.Contains(msgs[0].Subject, "FAILED") || !strings.Contains(msgs[0].Subject, "Attach isolation profile") {
		t.Fatalf("notifications %+v, want one failure naming Attach isolation profile", msgs)
	}
	// The network branch does not depend on the IAM branch.
	for i, eni := range seeded.ENIs {
		groups := eniGroups(t, c, eni)
		if len(groups) != 1 || groups[0].name != moto.IsolationGroupName {
			t.Errorf("%s (VPC %d) carries %v, want only the isolation group", eni, i, groups)
		}
	}
}
