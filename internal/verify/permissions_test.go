package verify_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/permissions"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// The IAM actions the function's role needs, derived from the calls it made over runs that reach every repair:
// an ENI in a VPC without a group (created, tagged on create, its egress revoked), a rule on the isolation group,
// another profile in place of the isolation profile (replaced back), the isolation profile disassociating beside
// another (that one disassociated, the isolation profile associated again). template.yaml's role for
// verify-containment must allow exactly these.
func TestIAMActionsOfTheRepairs(t *testing.T) {
	ctx := context.Background()
	var calls []sim.Call

	srv := start(t)
	in := isolate(t, srv, secgroup.ModeDirect)
	settled(t, srv)
	iso := isoGroup(t, in)
	srv.Update(func(a *sim.Account) {
		_ = a.DetachNetworkInterface("eni-0b9")
		if err := a.AttachNetworkInterface("eni-0b9", instance, 2); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := hand(srv).AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(iso),
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("-1"), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}}); err != nil {
		t.Fatal(err)
	}
	as, err := hand(srv).DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{})
	if err != nil || len(as.IamInstanceProfileAssociations) != 1 {
		t.Fatal(err, as)
	}
	if _, err := hand(srv).ReplaceIamInstanceProfileAssociation(ctx, &ec2.ReplaceIamInstanceProfileAssociationInput{
		AssociationId:      as.IamInstanceProfileAssociations[0].AssociationId,
		IamInstanceProfile: &types.IamInstanceProfileSpecification{Name: aws.String("app-server")}}); err != nil {
		t.Fatal(err)
	}
	settled(t, srv)
	if _, err := verifier(srv, secgroup.ModeDirect).Handle(ctx, in); err != nil {
		t.Fatal(err)
	}
	read(t, srv).contained()
	calls = append(calls, srv.Calls()...)

	srv = start(t)
	in = isolate(t, srv, secgroup.ModeDirect)
	settled(t, srv)
	srv.Update(func(a *sim.Account) {
		if err := a.SetAssociationState(instance, "disassociating"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.AddAssociation(instance, "app-server", "associated"); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := verifier(srv, secgroup.ModeDirect).Handle(ctx, in); err != nil {
		t.Fatal(err)
	}
	read(t, srv).contained()
	calls = append(calls, srv.Calls()...)

	want := []string{
		"ec2:AssociateIamInstanceProfile",
		"ec2:CreateSecurityGroup",
		"ec2:CreateTags",
		"ec2:DescribeIamInstanceProfileAssociations",
		"ec2:DescribeInstances",
		"ec2:DescribeSecurityGroups",
		"ec2:DisassociateIamInstanceProfile",
		"ec2:ModifyNetworkInterfaceAttribute",
		"ec2:ReplaceIamInstanceProfileAssociation",
		"ec2:RevokeSecurityGroupEgress",
		"ec2:RevokeSecurityGroupIngress",
		"iam:PassRole",
	}
	if diff := cmp.Diff(want, permissions.Required(calls)[caller]); diff != "" {
		t.Errorf("actions of %s (-want +got):\n%s", caller, diff)
	}
}
