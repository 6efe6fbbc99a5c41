package moto_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/moto"
	"github.com/ec2-isolation/ec2-isolation/internal/preflight"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
)

// runPreflight runs the checks with cfg's credentials, as `isolation preflight` does.
func runPreflight(t *testing.T, cfg aws.Config, n preflight.Names, instanceID string) preflight.Report {
	t.Helper()
	id, err := preflight.Identify(context.Background(), sts.NewFromConfig(cfg))
	return preflight.Run(context.Background(), preflight.Clients{EC2: ec2.NewFromConfig(cfg), IAM: iam.NewFromConfig(cfg), SNS: sns.NewFromConfig(cfg),
		S3: s3.NewFromConfig(cfg), AutoScaling: autoscaling.NewFromConfig(cfg), ELB: elb.NewFromConfig(cfg)},
		preflight.Input{Identity: id, IdentityErr: err, Names: n, NamesFrom: "test", InstanceID: instanceID})
}

// statuses maps each check to its status, with the ids of the seeded account replaced by their roles, so that a
// test can compare the whole table.
func statuses(rep preflight.Report, s moto.Seeded) map[string]string {
	r := strings.NewReplacer(s.InstanceID, "INSTANCE", s.ENIs[0], "ENI0", s.ENIs[1], "ENI1", s.VPCs[0], "VPC0", s.VPCs[1], "VPC1")
	out := map[string]string{}
	for _, c := range rep.Checks {
		v := string(c.Status)
		if c.Missing != "" {
			v += " missing " + c.Missing
		}
		out[r.Replace(c.Name)] = v
	}
	return out
}

// allPass is the report on the seeded account: every check passes but those that need the IAM policy simulator,
// which moto does not implement (docs/moto.md).
var allPass = map[string]string{
	"caller identity": "pass",
	"settings":        "pass",
	`isolation instance profile "ec2-isolation-quarantine"`: "pass",
	"notification topic":                       "pass",
	"instance INSTANCE":                        "pass",
	`group "ec2-isolation-quarantine" in VPC0`: "pass",
	`group "ec2-isolation-quarantine" in VPC1`: "pass",
	"apply group to ENI0":                      "pass",
	"apply group to ENI1":                      "pass",
	"snapshot 2 volumes":                       "pass",
	"tag Isolate=true":                         "pass",
	"detach instance profile":                  "unverified",
	"attach isolation profile":                 "unverified",
	"pass isolation role":                      "unverified",
	"publish notification":                     "unverified",
	// Issue 15, item 2.
	"incident bucket " + moto.BucketName: "pass",
	"write the incident record":          "unverified",
	"termination protection":             "pass",
	"shutdown behaviour":                 "pass",
	"delete-on-termination":              "pass",
	"Auto Scaling group":                 "pass",
	"target groups":                      "pass",
	"revoke credentials":                 "unverified",
	"release: lift the revocation and pass the original role": "unverified",
}

func TestPreflightOnMotoPassesAndChangesNothing(t *testing.T) {
	s := server(t)
	seeded, c := seed(t, s, moto.SeedOptions{Stack: true})
	cfg := s.Config("", "")
	n, from, err := preflight.Resolve(context.Background(), cloudformation.NewFromConfig(cfg), moto.StackName, preflight.Names{})
	if err != nil {
		t.Fatalf("resolve the stack's outputs: %v", err)
	}
	if diff := cmp.Diff(names(seeded, secgroup.ModeDirect), n); diff != "" || from != "stack "+moto.StackName {
		t.Errorf("names from %q, want from the stack; (-want +got):\n%s", from, diff)
	}
	rep := runPreflight(t, cfg, n, seeded.InstanceID)
	if diff := cmp.Diff(allPass, statuses(rep, seeded)); diff != "" {
		t.Errorf("checks (-want +got):\n%s\n%+v", diff, rep.Checks)
	}
	if !rep.OK() {
		t.Errorf("report not OK: %+v", rep.Checks)
	}

	// Nothing changed: the DryRun calls created no group, snapshot or association, and nothing was published.
	if g := groupsNamed(t, &fixture{c: c, seeded: seeded}, moto.IsolationGroupName); len(g) != 0 {
		t.Errorf("isolation groups created: %v", g)
	}
	for i, eni := range seeded.ENIs {
		onlyOwnGroup(t, c, eni, seeded.Groups[i])
	}
	if diff := cmp.Diff([]string{moto.InstanceProfileName + " (associated)"}, profiles(t, c, seeded.InstanceID)); diff != "" {
		t.Errorf("associations (-want +got):\n%s", diff)
	}
	// (moto's account owns snapshots of its built-in images: look for the instance's volumes.)
	snaps, err := c.EC2.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
		Filters: []types.Filter{{Name: aws.String("volume-id"), Values: seeded.Volumes}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps.Snapshots) != 0 {
		t.Errorf("%d snapshots of the instance's volumes after preflight", len(snaps.Snapshots))
	}
	if msgs, err := moto.ReadNotifications(context.Background(), c.SQS, seeded.QueueURL); err != nil || len(msgs) != 0 {
		t.Errorf("messages after preflight: %+v %v", msgs, err)
	}
}

func TestPreflightOnMotoFindsWhatIsWrong(t *testing.T) {
	tests := []struct {
		name    string
		seed    moto.SeedOptions
		prepare func(t *testing.T, c moto.Clients, s moto.Seeded, n *preflight.Names, instance *string)
		// want overrides allPass; "" deletes the check.
		want map[string]string
	}{
		{
			name: "the isolation profile does not exist",
			seed: moto.SeedOptions{NoIsolationProfile: true},
			want: map[string]string{`isolation instance profile "ec2-isolation-quarantine"`: "fail", "pass isolation role": "skip"},
		},
		{
			name: "the topic does not exist",
			prepare: func(t *testing.T, c moto.Clients, s moto.Seeded, n *preflight.Names, _ *string) {
				n.TopicARN = strings.Replace(s.TopicARN, moto.TopicName, "no-such-topic", 1)
			},
			want: map[string]string{"notification topic": "fail"},
		},
		{
			name: "the instance does not exist",
			prepare: func(t *testing.T, c moto.Clients, s moto.Seeded, n *preflight.Names, instance *string) {
				*instance = "i-0123456789abcdef0"
			},
			want: map[string]string{"instance INSTANCE": "", "instance i-0123456789abcdef0": "fail",
				`group "ec2-isolation-quarantine" in VPC0`: "", `group "ec2-isolation-quarantine" in VPC1`: "",
				"apply group to ENI0": "", "apply group to ENI1": "", "snapshot 2 volumes": "", "tag Isolate=true": "",
				"detach instance profile": "", "attach isolation profile": "", "pass isolation role": "",
				"termination protection": "", "shutdown behaviour": "", "delete-on-termination": "", "Auto Scaling group": "",
				"target groups": "", "revoke credentials": "", "release: lift the revocation and pass the original role": ""},
		},
		{
			name: "an isolation group exists and has a rule",
			prepare: func(t *testing.T, c moto.Clients, s moto.Seeded, n *preflight.Names, _ *string) {
				g, err := c.EC2.CreateSecurityGroup(context.Background(), &ec2.CreateSecurityGroupInput{
					VpcId: aws.String(s.VPCs[0]), GroupName: aws.String(moto.IsolationGroupName), Description: aws.String("x"),
					// Ours (as the workflow creates it), with a rule someone added since.
					TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup,
						Tags: []types.Tag{{Key: aws.String(secgroup.TagManaged), Value: aws.String("true")}}}},
				})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.EC2.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: g.GroupId,
					IpPermissions: []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}},
				}); err != nil {
					t.Fatal(err)
				}
			},
			// It passes: the workflow revokes the rules (DryRun revoke allowed).
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := server(t)
			seeded, c := seed(t, s, tt.seed)
			n, instance := names(seeded, secgroup.ModeDirect), seeded.InstanceID
			if tt.prepare != nil {
				tt.prepare(t, c, seeded, &n, &instance)
			}
			want := map[string]string{}
			for k, v := range allPass {
				want[k] = v
			}
			for k, v := range tt.want {
				if v == "" {
					delete(want, k)
				} else {
					want[k] = v
				}
			}
			rep := runPreflight(t, s.Config("", ""), n, instance)
			if diff := cmp.Diff(want, statuses(rep, seeded)); diff != "" {
				t.Errorf("checks (-want +got):\n%s\n%+v", diff, rep.Checks)
			}
			if rep.OK() != (len(tt.want) == 0) {
				t.Errorf("OK() = %v with checks %+v", rep.OK(), rep.Checks)
			}
		})
	}
}

// With moto's IAM enforcement on, a caller whose policy lacks permissions gets AccessDenied for them (AWS answers
// UnauthorizedOperation for EC2 DryRun calls; preflight reads both): the report names each missing permission.
func TestPreflightOnMotoNamesMissingPermissions(t *testing.T) {
	s := server(t)
	seeded, c := seed(t, s, moto.SeedOptions{})
	ctx := context.Background()
	if _, err := c.IAM.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("responder")}); err != nil {
		t.Fatal(err)
	}
	// Everything preflight calls but ec2:ModifyNetworkInterfaceAttribute and sns:GetTopicAttributes. (moto checks
	// HeadBucket against "s3:HeadBucket", an action IAM does not have; AWS against s3:ListBucket: docs/moto.md.)
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:GetCallerIdentity","ec2:Describe*",
		"ec2:CreateSecurityGroup","ec2:CreateSnapshots","ec2:CreateTags","iam:GetInstanceProfile","ec2:ModifyInstanceAttribute",
		"s3:ListBucket","s3:GetBucketVersioning","s3:HeadBucket","autoscaling:Describe*","elasticloadbalancing:Describe*"],"Resource":"*"}]}`
	if _, err := c.IAM.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("responder"), PolicyName: aws.String("p"), PolicyDocument: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	key, err := c.IAM.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("responder")})
	if err != nil {
		t.Fatal(err)
	}
	restore, err := s.EnforceIAM(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep := runPreflight(t, s.Config(aws.ToString(key.AccessKey.AccessKeyId), aws.ToString(key.AccessKey.SecretAccessKey)), names(seeded, secgroup.ModeDirect), seeded.InstanceID)
	if err := restore(); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{}
	for k, v := range allPass {
		want[k] = v
	}
	want["apply group to ENI0"] = "fail missing ec2:ModifyNetworkInterfaceAttribute"
	want["apply group to ENI1"] = "fail missing ec2:ModifyNetworkInterfaceAttribute"
	want["notification topic"] = "unverified missing sns:GetTopicAttributes"
	if diff := cmp.Diff(want, statuses(rep, seeded)); diff != "" {
		t.Errorf("checks (-want +got):\n%s\n%+v", diff, rep.Checks)
	}
	if !strings.HasSuffix(rep.Caller, ":user/responder") {
		t.Errorf("caller %q, want the responder user", rep.Caller)
	}
}
