package incident_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/incident"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/validate"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

var readerSettings = incident.ReaderSettings{
	Bucket: bucket, Tag: validate.Settings{TagKey: "Isolate", TagValue: "release"}, IsolationGroupName: groupName,
}

func newReader(srv *sim.Server) *incident.Reader {
	cfg := srv.AWSConfig("read-incident-record")
	return incident.NewReader(s3Client(srv, "read-incident-record"), ec2.NewFromConfig(cfg), readerSettings, quiet)
}

var opened = time.Date(2026, 11, 22, 10, 0, 5, 0, time.UTC)

// isolatedFile is the record of an instance isolated once (open incident).
func isolatedFile(pre workflow.Record) workflow.IncidentFile {
	return workflow.IncidentFile{
		SchemaVersion: incident.SchemaVersion, InstanceID: instanceID, InstanceARN: arn, Account: account, Region: region,
		Incidents: []workflow.Incident{{
			OpenedAt: opened,
			PreIsolation: workflow.PreIsolationState{
				Record:       pre,
				AutoScaling:  &workflow.AutoScalingMembership{GroupName: "web-asg", LifecycleState: "InService"},
				TargetGroups: []workflow.TargetRegistration{{TargetGroupARN: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef", Port: 80, AvailabilityZone: "us-east-1a"}},
			},
			Executions: []workflow.ExecutionEntry{{Workflow: workflow.WorkflowIsolation, ExecutionName: "iso-1", StartedAt: opened, Outcome: workflow.OutcomeSucceeded}},
			Snapshots:  []workflow.Snapshot{},
			Changes:    []workflow.Change{},
		}},
	}
}

func TestReadReturnsTheOpenIncidentWithoutChangingAnything(t *testing.T) {
	srv := start(t, withInstance(network(), []string{isoA}, []string{"sg-0000000000000000d"}))
	f := isolatedFile(preRecord())
	version := putFile(t, srv, f)
	srv.ResetCalls()

	got, err := newReader(srv).Handle(ctx, workflow.ValidateInput{Event: releaseEvent(instanceID), ExecutionName: "rel-1"})
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	want := workflow.ReleaseInput{
		InstanceID: instanceID, InstanceARN: arn, ExecutionName: "rel-1",
		Incident: workflow.IncidentRef{Bucket: bucket, Key: key, VersionID: version, OpenedAt: opened, PreIsolation: f.Incidents[0].PreIsolation,
			Isolations: []string{"iso-1"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("release input (-want +got):\n%s", diff)
	}
	if m := mutating(srv); len(m) != 0 {
		t.Errorf("mutating calls %v", m)
	}
}

func TestReadRefusesWithoutAMutatingCall(t *testing.T) {
	released := isolatedFile(preRecord())
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	released.Incidents[0].ReleasedAt = &at
	lost := preRecord()
	lost.NetworkInterfaces[0].Groups = []string{isoA} // the incident was opened on an instance already isolated

	tests := []struct {
		name   string
		sc     sim.Scenario
		record any // workflow.IncidentFile, []byte, or nil for none
		event  workflow.TagEvent
		// check says whether err is the wanted named error.
		want       string
		wantReason string
	}{
		{
			name: "never isolated", sc: withInstance(network(), []string{"sg-0000000000000000a"}, []string{"sg-0000000000000000d"}),
			event: releaseEvent(instanceID), want: "NotIsolated", wantReason: "never isolated",
		},
		{
			name: "unmanaged group with the isolation name", sc: withInstance(network(), []string{"sg-0000000000000000a"}, []string{"sg-0000000000000002b"}),
			event: releaseEvent(instanceID), want: "NotIsolated", wantReason: "never isolated",
		},
		{
			name: "isolated but the record is gone", sc: withInstance(network(), []string{isoA}, []string{"sg-0000000000000000d"}),
			event: releaseEvent(instanceID), want: "RecordMissing", wantReason: isoA,
		},
		{
			// vpcB's group of ours under the derived name (a foreign group holds the isolation group's name there).
			name: "isolated on the derived group but the record is gone", sc: func() sim.Scenario {
				sc := network()
				sc.SecurityGroups = append(sc.SecurityGroups, sim.SecurityGroup{ID: "sg-0000000000000003b", VpcID: vpcB, Name: groupName + "-managed",
					Description: "isolation", Ingress: []sim.Rule{}, Egress: []sim.Rule{}, Tags: map[string]string{"ec2-isolation:managed": "true"}})
				return withInstance(sc, []string{"sg-0000000000000000a"}, []string{"sg-0000000000000003b"})
			}(),
			event: releaseEvent(instanceID), want: "RecordMissing", wantReason: "sg-0000000000000003b",
		},
		{
			name: "already released", sc: withInstance(network(), []string{"sg-0000000000000000a"}, []string{"sg-0000000000000000d"}),
			record: released, event: releaseEvent(instanceID), want: "NotIsolated", wantReason: "already released at 2026-11-22T12:00:00Z",
		},
		{
			name: "pre-isolation state lost", sc: withInstance(network(), []string{isoA}, []string{"sg-0000000000000000d"}),
			record: isolatedFile(lost), event: releaseEvent(instanceID), want: "RecordMissing", wantReason: "already isolated",
		},
		{
			name: "record not readable", sc: withInstance(network(), []string{isoA}, []string{"sg-0000000000000000d"}),
			record: []byte("{not json"), event: releaseEvent(instanceID), want: "RecordMissing", wantReason: "not a readable incident record",
		},
		{
			name: "unknown instance", sc: network(), record: isolatedFile(preRecord()),
			event: releaseEvent(instanceID), want: "InstanceNotFound",
		},
		{
			name: "terminated instance", sc: func() sim.Scenario {
				sc := withInstance(network(), []string{isoA}, []string{"sg-0000000000000000d"})
				sc.Instances[0].State = "terminated"
				return sc
			}(), record: isolatedFile(preRecord()), event: releaseEvent(instanceID), want: "InstanceNotFound",
		},
		{
			name: "the isolation tag, not the release tag", sc: withInstance(network(), []string{isoA}, []string{"sg-0000000000000000d"}),
			record: isolatedFile(preRecord()), event: func() workflow.TagEvent {
				ev := releaseEvent(instanceID)
				ev.Detail.Tags["Isolate"] = "true"
				return ev
			}(), want: "InvalidEvent",
		},
		{
			name: "bucket gone", sc: func() sim.Scenario {
				sc := withInstance(network(), []string{isoA}, []string{"sg-0000000000000000d"})
				sc.Buckets = nil
				return sc
			}(), event: releaseEvent(instanceID), want: "RecordMissing", wantReason: "bucket does not exist",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t, tt.sc)
			switch r := tt.record.(type) {
			case workflow.IncidentFile:
				putFile(t, srv, r)
			case []byte:
				putRecord(t, srv, r)
			}
			srv.ResetCalls()
			_, err := newReader(srv).Handle(ctx, workflow.ValidateInput{Event: tt.event, ExecutionName: "rel-1"})
			if got := errorName(err); got != tt.want {
				t.Fatalf("err = %v (%s), want %s", err, got, tt.want)
			}
			if tt.wantReason != "" && !strings.Contains(err.Error(), tt.wantReason) {
				t.Errorf("err = %q, want it to say %q", err, tt.wantReason)
			}
			if m := mutating(srv); len(m) != 0 {
				t.Errorf("mutating calls %v", m)
			}
		})
	}
}

// errorName is the named error type of err, as the state machine sees it.
func errorName(err error) string {
	var (
		notIsolated *steperr.NotIsolated
		missing     *steperr.RecordMissing
		notFound    *steperr.InstanceNotFound
		invalid     *steperr.InvalidEvent
		input       *steperr.InvalidInput
		awsErr      *steperr.AWSError
		transient   *steperr.Transient
	)
	switch {
	case err == nil:
		return "nil"
	case errors.As(err, &notIsolated):
		return "NotIsolated"
	case errors.As(err, &missing):
		return "RecordMissing"
	case errors.As(err, &notFound):
		return "InstanceNotFound"
	case errors.As(err, &invalid):
		return "InvalidEvent"
	case errors.As(err, &input):
		return "InvalidInput"
	case errors.As(err, &awsErr):
		return "AWSError"
	case errors.As(err, &transient):
		return "Transient"
	}
	return "unnamed"
}
