package credentials_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/ec2-isolation/ec2-isolation/internal/credentials"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// Issue 13 item 1: credentials copied from the instance before its isolation stay denied after the release; the
// credentials the instance gets after the release work, and so do another instance's of the same role. The
// simulator evaluates the role's inline denies for requests signed with instance credentials (sim/iam_eval.go).
func TestReleaseKeepsStolenCredentialsDeniedAndFreshOnesWork(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	clock := sim.NewManualClock(t0)
	sc := scenario()
	const other = "i-0fedcba9876543210"
	sc.Instances = append(sc.Instances, sim.Instance{ID: other, SubnetID: sc.Instances[0].SubnetID, Profile: "web"})
	srv, err := sim.Start(sc, sim.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	h := credentials.New(iam.NewFromConfig(srv.AWSConfig("revoke")), everyRole, nil)

	issue := func(instance string) string {
		t.Helper()
		var key string
		srv.Update(func(a *sim.Account) { key, err = a.InstanceCredentials(instance) })
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	// allowed reports whether credentials key may call EC2 and IAM; a denial must be the explicit deny.
	allowed := func(key string) bool {
		t.Helper()
		cfg := srv.AWSConfig(key)
		_, errEC2 := ec2.NewFromConfig(cfg).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
		_, errIAM := iam.NewFromConfig(cfg).GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("web-role")})
		switch {
		case errEC2 == nil && errIAM == nil:
			return true
		case steperr.Code(errEC2) == "UnauthorizedOperation" && steperr.Code(errIAM) == "AccessDenied":
			return false
		}
		t.Fatalf("credentials %s: EC2 %v, IAM %v: want both allowed or both denied", key, errEC2, errIAM)
		return false
	}

	stolen, colleague := issue(instanceID), issue(other)
	if !allowed(stolen) || !allowed(colleague) {
		t.Fatal("credentials denied before any revocation")
	}
	clock.Advance(time.Minute)
	if _, err := h.Revoke(ctx, input); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if allowed(stolen) {
		t.Error("isolated: the instance's credentials still work")
	}
	if !allowed(colleague) {
		t.Error("isolated: another instance of the role is denied")
	}

	clock.Advance(2 * time.Hour)
	releasedAt := clock.Now()
	lift := input
	lift.ReleaseStartedAt = &releasedAt
	out, err := h.Lift(ctx, lift)
	if err != nil || len(out.Roles) != 1 || out.Roles[0].Until == nil {
		t.Fatalf("Lift = %+v, %v", out, err)
	}
	clock.Advance(time.Second) // the restored profile's credentials come after the release started
	fresh := issue(instanceID)
	if allowed(stolen) {
		t.Error("released: credentials taken before the isolation work again")
	}
	if !allowed(fresh) {
		t.Error("released: the instance's fresh credentials are denied")
	}
	if !allowed(colleague) {
		t.Error("released: another instance of the role is denied")
	}
	if want := releasedAt.Add(credentials.KeepFor); out.Roles[0].Until.Before(want) {
		t.Errorf("the released policy may go at %v, before every credential issued before %v has expired (%v)", out.Roles[0].Until, releasedAt, want)
	}
}
