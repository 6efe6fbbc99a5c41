package preflight_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/preflight"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// checkAsRole runs the checks with an IAM client, as a session of the role "responder" whose one inline policy
// is policy: the rows for the calls without DryRun ask the simulator's iam:SimulatePrincipalPolicy.
func checkAsRole(t *testing.T, policy string) map[string]string {
	t.Helper()
	sc := account()
	sc.Roles = append(sc.Roles, sim.Role{Name: "responder", InlinePolicies: map[string]sim.PolicyDocument{"responder": sim.PolicyDocument(policy)}},
		sim.Role{Name: groupName}, sim.Role{Name: "web-app-role"})
	srv, err := sim.Start(sc, sim.WithInProcess())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	cfg := srv.AWSConfig("responder-session")
	rep := preflight.Run(context.Background(), preflight.Clients{EC2: ec2.NewFromConfig(cfg), IAM: iam.NewFromConfig(cfg), SNS: sns.NewFromConfig(cfg),
		S3: s3.NewFromConfig(cfg), AutoScaling: autoscaling.NewFromConfig(cfg), ELB: elb.NewFromConfig(cfg)}, preflight.Input{
		Identity: preflight.Identity{Account: "123456789012", ARN: "arn:aws:sts::123456789012:assumed-role/responder/alice", Partition: "aws"},
		Names:    names, NamesFrom: "flags", InstanceID: instanceID,
	})
	return table(rep)
}

// The rows verified with the policy simulator (no DryRun), as the simulator now evaluates them.
var simulated = []string{"detach instance profile", "attach isolation profile", "pass isolation role", "publish notification",
	"write the incident record", "revoke credentials", "release: lift the revocation and pass the original role"}

func simulatedRows(got map[string]string) map[string]string {
	out := map[string]string{}
	for _, k := range simulated {
		out[k] = got[k]
	}
	return out
}

// Issue 16 leftover 2: the simulator answers SimulatePrincipalPolicy from the caller's role's policies, so the
// preflight rows that use it pass, fail (naming the action) or stay unverified (a condition the simulator is not
// given) as they would in AWS, instead of all being unverified.
func TestSimulatedRowsFollowTheCallersPolicies(t *testing.T) {
	allowAll := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`
	allPass := map[string]string{}
	for _, k := range simulated {
		allPass[k] = "pass"
	}
	for _, tt := range []struct {
		name, policy string
		want         map[string]string
	}{
		{"allow all", allowAll, allPass},
		{"publish denied", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
			{"Effect":"Deny","Action":"sns:Publish","Resource":"arn:aws:sns:*:*:ec2-isolation-*"}]}`,
			with(allPass, "publish notification", "fail missing sns:Publish")},
		{"no iam:PassRole", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iam:PassRole","Resource":"*"}]}`,
			with(with(allPass, "pass isolation role", "fail missing iam:PassRole"),
				"release: lift the revocation and pass the original role", "fail missing iam:PassRole")},
		{"attach only on tagged instances", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","NotAction":["ec2:AssociateIamInstanceProfile","ec2:ReplaceIamInstanceProfileAssociation"],"Resource":"*"},
			{"Effect":"Allow","Action":["ec2:AssociateIamInstanceProfile","ec2:ReplaceIamInstanceProfileAssociation"],"Resource":"*",
			 "Condition":{"StringEquals":{"aws:ResourceTag/Isolate":"true"}}}]}`,
			with(allPass, "attach isolation profile", "unverified")},
		{"s3 records elsewhere", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"s3:PutObject","Resource":"*"},
			{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::other-bucket/*"}]}`,
			with(allPass, "write the incident record", "fail missing s3:PutObject")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, simulatedRows(checkAsRole(t, tt.policy))); diff != "" {
				t.Errorf("rows verified with the policy simulator (-want +got):\n%s", diff)
			}
		})
	}
}

func with(m map[string]string, k, v string) map[string]string {
	out := map[string]string{}
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}
