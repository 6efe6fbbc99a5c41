package incident_test

// Issue 13, item 15: each incident record the stack writes is also copied to the organization's central bucket
// in the security account, whose policy accepts the organization's accounts, each under its own prefix
// (organization/security-account.yaml). Two simulated accounts: this one (the member, 123456789012) and the
// security account.

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ec2-isolation/ec2-isolation/internal/incident"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// centralVersions are the bodies of the record's versions in the central bucket, oldest first.
func centralVersions(security *sim.Server) []string {
	var out []string
	security.Update(func(a *sim.Account) {
		for _, v := range a.ObjectVersions(simtest.CentralBucket, key) {
			out = append(out, string(v.Body))
		}
	})
	return out
}

// memberRecord is the record's current body in the member's own bucket.
func memberRecord(t *testing.T, srv *sim.Server) string {
	t.Helper()
	out, err := s3Client(srv, "test").GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return string(b)
}

func TestRecordsAreCopiedToTheCentralBucket(t *testing.T) {
	if simtest.MemberAccountID != account {
		t.Fatalf("the member account of simtest (%s) must be the record's (%s)", simtest.MemberAccountID, account)
	}
	srv := start(t, fleet())
	security, _ := simtest.SecurityAccount(t, "eu-west-1")
	r := newRecorder(srv).WithCentral(s3.NewFromConfig(security.AWSConfig(simtest.MemberKey)), simtest.CentralBucket)

	ref, err := r.Open(ctx, openInput("iso-1"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	want := "s3://" + simtest.CentralBucket + "/" + key
	copies := centralVersions(security)
	if ref.Central == nil || ref.Central.Target != want || ref.Central.Error != "" || len(copies) != 1 {
		t.Fatalf("after Open: central = %+v, %d central versions; want one copy at %s", ref.Central, len(copies), want)
	}
	if copies[0] != memberRecord(t, srv) {
		t.Errorf("the central copy differs from the record:\n%s\n%s", copies[0], memberRecord(t, srv))
	}

	out, err := r.Close(ctx, incident.PhaseOutcome, isolationState(ref, "iso-1"))
	if err != nil {
		t.Fatalf("Record outcome: %v", err)
	}
	copies = centralVersions(security)
	if out.Central == nil || out.Central.Error != "" || len(copies) != 2 || copies[1] != memberRecord(t, srv) {
		t.Fatalf("after Record outcome: central = %+v, %d versions; want a second copy equal to the record", out.Central, len(copies))
	}
	var f workflow.IncidentFile
	if err := json.Unmarshal([]byte(copies[1]), &f); err != nil || len(f.Incidents) != 1 || len(f.Incidents[0].Executions) != 1 {
		t.Errorf("the central copy is not the incident record: %v %+v", err, f)
	}
}

// An account outside the organization is refused by the central bucket's policy: the step still records in its
// own bucket and says why the copy is missing.
func TestCentralBucketRefusesAnAccountOutsideTheOrganization(t *testing.T) {
	srv := start(t, fleet())
	security, _ := simtest.SecurityAccount(t, "eu-west-1")
	r := newRecorder(srv).WithCentral(s3.NewFromConfig(security.AWSConfig(simtest.OutsiderKey)), simtest.CentralBucket)
	ref, err := r.Open(ctx, openInput("iso-1"))
	if err != nil {
		t.Fatalf("Open: %v (a refused copy never fails the step)", err)
	}
	if ref.Central == nil || ref.Central.ID != "" || !strings.Contains(ref.Central.Error, "AccessDenied") {
		t.Errorf("central = %+v, want the AccessDenied", ref.Central)
	}
	if n := len(centralVersions(security)); n != 0 {
		t.Errorf("the central bucket holds %d versions, want none", n)
	}
	if f, _ := readRecord(t, srv); len(f.Incidents) != 1 {
		t.Errorf("the member's own record has %d incidents, want 1", len(f.Incidents))
	}
}
