package sim

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func associations(t *testing.T, c *ec2.Client, instance string) []string {
	t.Helper()
	out, err := c.DescribeIamInstanceProfileAssociations(context.Background(), &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{instance}}}})
	if err != nil {
		t.Fatalf("DescribeIamInstanceProfileAssociations: %v", err)
	}
	var got []string
	for _, a := range out.IamInstanceProfileAssociations {
		arn := aws.ToString(a.IamInstanceProfile.Arn)
		got = append(got, arn[strings.LastIndex(arn, "/")+1:]+":"+string(a.State))
	}
	return got
}

func TestProfileAssociationLifecycle(t *testing.T) {
	sc := baseScenario()
	sc.Behaviour.AssociationSettle = time.Second
	clock := NewManualClock(t0)
	_, c, _ := start(t, sc, WithClock(clock))
	ctx := context.Background()
	isolation := &ec2types.IamInstanceProfileSpecification{Name: aws.String("isolation")}

	if diff := cmp.Diff([]string{"web-profile:associated"}, associations(t, c, instWeb)); diff != "" {
		t.Fatalf("seeded association (-want +got):\n%s", diff)
	}
	_, err := c.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: aws.String(instWeb), IamInstanceProfile: isolation})
	wantErr(t, err, "IncorrectState", 400)

	d, err := c.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []ec2types.Filter{{Name: aws.String("state"), Values: []string{"associated"}}}})
	if err != nil || len(d.IamInstanceProfileAssociations) != 1 {
		t.Fatalf("state filter: %v %+v", err, d)
	}
	old := aws.ToString(d.IamInstanceProfileAssociations[0].AssociationId)
	dis, err := c.DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{AssociationId: aws.String(old)})
	if err != nil {
		t.Fatal(err)
	}
	if dis.IamInstanceProfileAssociation.State != ec2types.IamInstanceProfileAssociationStateDisassociating {
		t.Errorf("Disassociate answered state %s", dis.IamInstanceProfileAssociation.State)
	}
	// Still disassociating: a new association is refused.
	_, err = c.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: aws.String(instWeb), IamInstanceProfile: isolation})
	wantErr(t, err, "IncorrectState", 400)
	if diff := cmp.Diff([]string{"web-profile:disassociating"}, associations(t, c, instWeb)); diff != "" {
		t.Errorf("while disassociating (-want +got):\n%s", diff)
	}

	clock.Advance(time.Second)
	if got := associations(t, c, instWeb); len(got) != 0 {
		t.Errorf("after settle, associations %v", got)
	}
	as, err := c.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: aws.String(instWeb), IamInstanceProfile: isolation})
	if err != nil {
		t.Fatal(err)
	}
	if as.IamInstanceProfileAssociation.State != ec2types.IamInstanceProfileAssociationStateAssociating ||
		aws.ToString(as.IamInstanceProfileAssociation.IamInstanceProfile.Arn) != "arn:aws:iam::123456789012:instance-profile/isolation" {
		t.Errorf("Associate answered %+v", as.IamInstanceProfileAssociation)
	}
	newID := aws.ToString(as.IamInstanceProfileAssociation.AssociationId)
	// Replace works only on an associated association.
	_, err = c.ReplaceIamInstanceProfileAssociation(ctx, &ec2.ReplaceIamInstanceProfileAssociationInput{AssociationId: aws.String(newID),
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String("web-profile")}})
	wantErr(t, err, "IncorrectState", 400)
	_, err = c.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: aws.String(instWeb), IamInstanceProfile: isolation})
	wantErr(t, err, "IncorrectState", 400)

	clock.Advance(time.Second)
	if diff := cmp.Diff([]string{"isolation:associated"}, associations(t, c, instWeb)); diff != "" {
		t.Errorf("after settle (-want +got):\n%s", diff)
	}
	in := describeOne(t, c, instWeb)
	if in.IamInstanceProfile == nil || !strings.HasSuffix(aws.ToString(in.IamInstanceProfile.Arn), "/isolation") {
		t.Errorf("DescribeInstances profile %+v", in.IamInstanceProfile)
	}
	rep, err := c.ReplaceIamInstanceProfileAssociation(ctx, &ec2.ReplaceIamInstanceProfileAssociationInput{AssociationId: aws.String(newID),
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String("web-profile")}})
	if err != nil {
		t.Fatal(err)
	}
	if id := aws.ToString(rep.IamInstanceProfileAssociation.AssociationId); id == newID || id == "" ||
		rep.IamInstanceProfileAssociation.State != ec2types.IamInstanceProfileAssociationStateAssociating {
		t.Errorf("Replace answered %+v, want a new id in state associating", rep.IamInstanceProfileAssociation)
	}
	_, err = c.DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{AssociationId: aws.String("iip-assoc-0123456789abcdef0")})
	wantErr(t, err, "InvalidAssociationID.NotFound", 400)
}

func TestProfileNotYetVisibleAndUnknown(t *testing.T) {
	sc := baseScenario()
	sc.InstanceProfiles = append(sc.InstanceProfiles, InstanceProfile{Name: "fresh", VisibleAfter: 5 * time.Second})
	clock := NewManualClock(t0)
	_, c, _ := start(t, sc, WithClock(clock))
	ctx := context.Background()
	for _, name := range []string{"fresh", "does-not-exist"} {
		_, err := c.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: aws.String(instDB),
			IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String(name)}})
		wantErr(t, err, "InvalidParameterValue", 400)
		if !strings.Contains(err.Error(), "Invalid IAM Instance Profile name") {
			t.Errorf("message for %s: %v", name, err)
		}
	}
	if got := associations(t, c, instDB); len(got) != 0 {
		t.Fatalf("refused calls left associations %v", got)
	}
	clock.Advance(5 * time.Second)
	_, err := c.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: aws.String(instDB),
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Arn: aws.String("arn:aws:iam::123456789012:instance-profile/fresh")}})
	if err != nil {
		t.Fatalf("profile visible after its delay: %v", err)
	}
	if diff := cmp.Diff([]string{"fresh:associated"}, associations(t, c, instDB)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func describeOne(t *testing.T, c *ec2.Client, id string) ec2types.Instance {
	t.Helper()
	out, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeInstances(%s): %v", id, err)
	}
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("DescribeInstances(%s): %+v", id, out.Reservations)
	}
	return out.Reservations[0].Instances[0]
}

type ruleView struct{ Proto, Peer string }

func groupRules(t *testing.T, c *ec2.Client, id string) (ingress, egress []ruleView) {
	t.Helper()
	out, err := c.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeSecurityGroups(%s): %v", id, err)
	}
	flat := func(ps []ec2types.IpPermission) []ruleView {
		var out []ruleView
		for _, p := range ps {
			for _, r := range p.IpRanges {
				out = append(out, ruleView{aws.ToString(p.IpProtocol), aws.ToString(r.CidrIp)})
			}
			for _, r := range p.Ipv6Ranges {
				out = append(out, ruleView{aws.ToString(p.IpProtocol), aws.ToString(r.CidrIpv6)})
			}
			for _, g := range p.UserIdGroupPairs {
				out = append(out, ruleView{aws.ToString(p.IpProtocol), aws.ToString(g.GroupId)})
			}
			for _, l := range p.PrefixListIds {
				out = append(out, ruleView{aws.ToString(p.IpProtocol), aws.ToString(l.PrefixListId)})
			}
		}
		return out
	}
	return flat(out.SecurityGroups[0].IpPermissions), flat(out.SecurityGroups[0].IpPermissionsEgress)
}

// A rule whose peer is a managed prefix list: authorized, described (prefixListIds), duplicated, revoked by its
// permission, as EC2 does.
func TestSecurityGroupPrefixListRules(t *testing.T) {
	_, c, _ := start(t, baseScenario())
	ctx := context.Background()
	g, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("pl"), Description: aws.String("pl"), VpcId: aws.String(vpcA)})
	if err != nil {
		t.Fatal(err)
	}
	perm := []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
		PrefixListIds: []ec2types.PrefixListId{{PrefixListId: aws.String("pl-0123456789abcdef0"), Description: aws.String("s3")}}}}
	auth, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: g.GroupId, IpPermissions: perm})
	if err != nil {
		t.Fatal(err)
	}
	if len(auth.SecurityGroupRules) != 1 || aws.ToString(auth.SecurityGroupRules[0].PrefixListId) != "pl-0123456789abcdef0" {
		t.Errorf("authorize answer %+v", auth.SecurityGroupRules)
	}
	_, err = c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: g.GroupId, IpPermissions: perm})
	wantErr(t, err, "InvalidPermission.Duplicate", 400)
	if ingress, _ := groupRules(t, c, *g.GroupId); !cmp.Equal([]ruleView{{"tcp", "pl-0123456789abcdef0"}}, ingress) {
		t.Errorf("ingress %v", ingress)
	}
	bad := []ec2types.IpPermission{{IpProtocol: aws.String("-1"), PrefixListIds: []ec2types.PrefixListId{{PrefixListId: aws.String("s3")}}}}
	_, err = c.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: g.GroupId, IpPermissions: bad})
	wantErr(t, err, "InvalidPrefixListId.Malformed", 400)
	if _, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: g.GroupId, IpPermissions: perm}); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if ingress, _ := groupRules(t, c, *g.GroupId); len(ingress) != 0 {
		t.Errorf("ingress after revoke: %v", ingress)
	}
}

func TestSecurityGroupCreateDuplicateAndVisibility(t *testing.T) {
	sc := baseScenario()
	sc.Behaviour.GroupVisibilityDelay = 2 * time.Second
	clock := NewManualClock(t0)
	_, c, _ := start(t, sc, WithClock(clock))
	ctx := context.Background()
	byName := func(vpc string) []string {
		out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
			{Name: aws.String("vpc-id"), Values: []string{vpc}}, {Name: aws.String("group-name"), Values: []string{"quarantine"}}}})
		if err != nil {
			t.Fatalf("DescribeSecurityGroups: %v", err)
		}
		var ids []string
		for _, g := range out.SecurityGroups {
			ids = append(ids, aws.ToString(g.GroupId))
		}
		return ids
	}
	created, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("quarantine"),
		Description: aws.String("isolation"), VpcId: aws.String(vpcA), TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeSecurityGroup, Tags: []ec2types.Tag{{Key: aws.String("Purpose"), Value: aws.String("isolation")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(created.GroupId)
	_, err = c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("quarantine"), Description: aws.String("x"), VpcId: aws.String(vpcA)})
	wantErr(t, err, "InvalidGroup.Duplicate", 400)
	if !strings.Contains(err.Error(), "The security group 'quarantine' already exists for VPC '"+vpcA+"'") {
		t.Errorf("duplicate message: %v", err)
	}
	// Invisible for the delay: filtered Describe omits it, everything by id answers InvalidGroup.NotFound.
	if got := byName(vpcA); len(got) != 0 {
		t.Errorf("invisible group described: %v", got)
	}
	_, err = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
	wantErr(t, err, "InvalidGroup.NotFound", 400)
	_, err = c.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(id),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}})
	wantErr(t, err, "InvalidGroup.NotFound", 400)
	_, err = c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eniDB0), Groups: []string{id}})
	wantErr(t, err, "InvalidGroup.NotFound", 400)

	// The same name is free in another VPC.
	if _, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("quarantine"), Description: aws.String("x"), VpcId: aws.String(vpcB)}); err != nil {
		t.Fatalf("same name in another VPC: %v", err)
	}

	clock.Advance(2 * time.Second)
	if diff := cmp.Diff([]string{id}, byName(vpcA)); diff != "" {
		t.Errorf("visible group (-want +got):\n%s", diff)
	}
	tagged, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{{Name: aws.String("tag:Purpose"), Values: []string{"isolation"}}}})
	if err != nil || len(tagged.SecurityGroups) != 1 || aws.ToString(tagged.SecurityGroups[0].GroupId) != id {
		t.Errorf("tag filter: %v %+v", err, tagged)
	}
	ingress, egress := groupRules(t, c, id)
	if diff := cmp.Diff([]ruleView{{"-1", "0.0.0.0/0"}, {"-1", "::/0"}}, egress); diff != "" || len(ingress) != 0 {
		t.Errorf("new group in an IPv6 VPC: ingress %v, egress (-want +got):\n%s", ingress, diff)
	}
	others := byName(vpcB)
	if _, egressB := groupRules(t, c, others[0]); !cmp.Equal([]ruleView{{"-1", "0.0.0.0/0"}}, egressB) {
		t.Errorf("new group in an IPv4-only VPC: egress %v", egressB)
	}
}

func TestSecurityGroupRules(t *testing.T) {
	_, c, _ := start(t, baseScenario())
	ctx := context.Background()
	g, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("q"), Description: aws.String("q"), VpcId: aws.String(vpcA)})
	if err != nil {
		t.Fatal(err)
	}
	id := g.GroupId
	all := []ec2types.IpPermission{{IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}},
		Ipv6Ranges: []ec2types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}}}
	rev, err := c.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: id, IpPermissions: all})
	if err != nil {
		t.Fatal(err)
	}
	if !aws.ToBool(rev.Return) || len(rev.RevokedSecurityGroupRules) != 2 || len(rev.UnknownIpPermissions) != 0 {
		t.Errorf("revoke answer %+v", rev)
	}
	if _, egress := groupRules(t, c, *id); len(egress) != 0 {
		t.Errorf("egress after revoke: %v", egress)
	}
	// Revoking a rule that does not exist (non-default VPC) fails.
	_, err = c.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: id, IpPermissions: all})
	wantErr(t, err, "InvalidPermission.NotFound", 400)

	ssh := []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
		IpRanges: []ec2types.IpRange{{CidrIp: aws.String("198.51.100.0/24"), Description: aws.String("forensics")}}}}
	auth, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: id, IpPermissions: ssh})
	if err != nil {
		t.Fatal(err)
	}
	if len(auth.SecurityGroupRules) != 1 || !strings.HasPrefix(aws.ToString(auth.SecurityGroupRules[0].SecurityGroupRuleId), "sgr-") ||
		aws.ToString(auth.SecurityGroupRules[0].CidrIpv4) != "198.51.100.0/24" || aws.ToBool(auth.SecurityGroupRules[0].IsEgress) {
		t.Errorf("authorize answer %+v", auth.SecurityGroupRules)
	}
	_, err = c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: id, IpPermissions: ssh})
	wantErr(t, err, "InvalidPermission.Duplicate", 400)
	ingress, _ := groupRules(t, c, *id)
	if diff := cmp.Diff([]ruleView{{"tcp", "198.51.100.0/24"}}, ingress); diff != "" {
		t.Errorf("ingress (-want +got):\n%s", diff)
	}
	if _, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: id,
		SecurityGroupRuleIds: []string{aws.ToString(auth.SecurityGroupRules[0].SecurityGroupRuleId)}}); err != nil {
		t.Fatalf("revoke by rule id: %v", err)
	}
	if ingress, _ := groupRules(t, c, *id); len(ingress) != 0 {
		t.Errorf("ingress after revoke by id: %v", ingress)
	}

	// A group in use cannot be deleted.
	if _, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eniDB0), Groups: []string{*id}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: id})
	wantErr(t, err, "DependencyViolation", 400)
	if _, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eniDB0), Groups: []string{sgSSH}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: id}); err != nil {
		t.Fatalf("delete unused group: %v", err)
	}
	_, err = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{*id}})
	wantErr(t, err, "InvalidGroup.NotFound", 400)
}

func TestModifyInstanceAttribute(t *testing.T) {
	_, c, _ := start(t, baseScenario())
	ctx := context.Background()
	_, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(instWeb), Groups: []string{sgSSH}})
	wantErr(t, err, "InvalidInstanceID", 400)
	if !strings.Contains(err.Error(), "There are multiple interfaces attached to instance") {
		t.Errorf("message: %v", err)
	}
	if _, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(instDB), Groups: []string{sgWeb}}); err != nil {
		t.Fatalf("single-ENI instance: %v", err)
	}
	if diff := cmp.Diff([]string{sgWeb}, eniGroups(t, c, eniDB0)); diff != "" {
		t.Errorf("primary ENI groups (-want +got):\n%s", diff)
	}
	steps := []ec2.ModifyInstanceAttributeInput{
		{InstanceId: aws.String(instWeb), DisableApiTermination: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}},
		{InstanceId: aws.String(instWeb), InstanceInitiatedShutdownBehavior: &ec2types.AttributeValue{Value: aws.String("terminate")}},
		{InstanceId: aws.String(instWeb), BlockDeviceMappings: []ec2types.InstanceBlockDeviceMappingSpecification{
			{DeviceName: aws.String("/dev/xvda"), Ebs: &ec2types.EbsInstanceBlockDeviceSpecification{DeleteOnTermination: aws.Bool(false)}}}},
	}
	for _, in := range steps {
		if _, err := c.ModifyInstanceAttribute(ctx, &in); err != nil {
			t.Fatalf("ModifyInstanceAttribute: %v", err)
		}
	}
	term, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(instWeb), Attribute: ec2types.InstanceAttributeNameDisableApiTermination})
	if err != nil || !aws.ToBool(term.DisableApiTermination.Value) {
		t.Errorf("disableApiTermination: %v %+v", err, term)
	}
	sd, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(instWeb), Attribute: ec2types.InstanceAttributeNameInstanceInitiatedShutdownBehavior})
	if err != nil || aws.ToString(sd.InstanceInitiatedShutdownBehavior.Value) != "terminate" {
		t.Errorf("shutdown behaviour: %v %+v", err, sd)
	}
	in := describeOne(t, c, instWeb)
	dot := map[string]bool{}
	for _, b := range in.BlockDeviceMappings {
		dot[aws.ToString(b.DeviceName)] = aws.ToBool(b.Ebs.DeleteOnTermination)
	}
	// The root volume was seeded with DeleteOnTermination true.
	if diff := cmp.Diff(map[string]bool{"/dev/xvda": false, "/dev/xvdf": false}, dot); diff != "" {
		t.Errorf("DeleteOnTermination (-want +got):\n%s", diff)
	}
	_, err = c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(instWeb),
		InstanceInitiatedShutdownBehavior: &ec2types.AttributeValue{Value: aws.String("hibernate")}})
	wantErr(t, err, "InvalidParameterValue", 400)
	_, err = c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(instWeb),
		DisableApiTermination:             &ec2types.AttributeBooleanValue{Value: aws.Bool(false)},
		InstanceInitiatedShutdownBehavior: &ec2types.AttributeValue{Value: aws.String("stop")}})
	wantErr(t, err, "InvalidParameterCombination", 400)
	if sd, _ := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(instWeb),
		Attribute: ec2types.InstanceAttributeNameInstanceInitiatedShutdownBehavior}); aws.ToString(sd.InstanceInitiatedShutdownBehavior.Value) != "terminate" {
		t.Errorf("refused calls changed shutdown behaviour to %s", aws.ToString(sd.InstanceInitiatedShutdownBehavior.Value))
	}
}

func TestTerminatedAndNoVPCInstances(t *testing.T) {
	s, c, _ := start(t, baseScenario())
	s.Update(func(a *Account) {
		if err := a.TerminateInstance(instWeb); err != nil {
			t.Fatal(err)
		}
	})
	in := describeOne(t, c, instWeb)
	if in.State.Name != ec2types.InstanceStateNameTerminated || len(in.NetworkInterfaces) != 0 || in.VpcId != nil || len(in.SecurityGroups) != 0 {
		t.Errorf("terminated instance: state %s, %d ENIs, vpc %v", in.State.Name, len(in.NetworkInterfaces), in.VpcId)
	}
	classic := describeOne(t, c, instClassic)
	if classic.VpcId != nil || classic.SubnetId != nil || len(classic.NetworkInterfaces) != 0 {
		t.Errorf("instance without subnet: %+v", classic)
	}
	out, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("instance-state-name"), Values: []string{"running"}}, {Name: aws.String("tag:Name"), Values: []string{"web-*"}}}})
	if err != nil || len(out.Reservations) != 0 {
		t.Errorf("filter running + tag: %v %+v", err, out)
	}
}

func TestDescribeNetworkInterfacesFilters(t *testing.T) {
	_, c, _ := start(t, baseScenario())
	out, err := c.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{instWeb}}, {Name: aws.String("vpc-id"), Values: []string{vpcB}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.NetworkInterfaces) != 1 || aws.ToString(out.NetworkInterfaces[0].NetworkInterfaceId) != eniWeb1 ||
		aws.ToString(out.NetworkInterfaces[0].Attachment.InstanceId) != instWeb || out.NetworkInterfaces[0].Status != ec2types.NetworkInterfaceStatusInUse {
		t.Errorf("filtered ENIs %+v", out.NetworkInterfaces)
	}
	_, err = c.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{
		{Name: aws.String("attachment.instnace-id"), Values: []string{instWeb}}}})
	wantErr(t, err, "InvalidParameterValue", 400)
}

func TestDryRun(t *testing.T) {
	s, c, _ := start(t, baseScenario())
	ctx := context.Background()
	_, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{DryRun: aws.Bool(true),
		NetworkInterfaceId: aws.String(eniWeb0), Groups: []string{sgSSH}})
	wantErr(t, err, "DryRunOperation", 412)
	if !strings.Contains(err.Error(), "Request would have succeeded, but DryRun flag is set.") {
		t.Errorf("message: %v", err)
	}
	// DryRun validates first.
	_, err = c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{DryRun: aws.Bool(true),
		NetworkInterfaceId: aws.String(eniWeb0), Groups: []string{sgOther}})
	wantErr(t, err, "InvalidGroup.NotFound", 400)
	_, err = c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{DryRun: aws.Bool(true), GroupName: aws.String("dry"), Description: aws.String("d"), VpcId: aws.String(vpcA)})
	wantErr(t, err, "DryRunOperation", 412)
	_, err = c.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{DryRun: aws.Bool(true), InstanceSpecification: &ec2types.InstanceSpecification{InstanceId: aws.String(instWeb)}})
	wantErr(t, err, "DryRunOperation", 412)

	if diff := cmp.Diff([]string{sgWeb, sgSSH}, eniGroups(t, c, eniWeb0)); diff != "" {
		t.Errorf("DryRun changed groups (-want +got):\n%s", diff)
	}
	if _, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("dry"), Description: aws.String("d"), VpcId: aws.String(vpcA)}); err != nil {
		t.Errorf("DryRun created the group: %v", err)
	}
	snaps, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
	if err != nil || len(snaps.Snapshots) != 0 {
		t.Errorf("DryRun created snapshots: %v %+v", err, snaps)
	}
	first := s.Calls()[0]
	if !first.DryRun || first.Mutating || first.ErrorCode != "DryRunOperation" || first.HTTPStatus != 412 {
		t.Errorf("DryRun call recorded as %+v", first)
	}
}

func TestCreateSnapshotsSet(t *testing.T) {
	sc := baseScenario()
	sc.Behaviour.SnapshotCompleteAfter = 10 * time.Second
	clock := NewManualClock(t0)
	_, c, _ := start(t, sc, WithClock(clock))
	ctx := context.Background()
	out, err := c.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{
		InstanceSpecification: &ec2types.InstanceSpecification{InstanceId: aws.String(instWeb)},
		Description:           aws.String("isolation of " + instWeb), CopyTagsFromSource: ec2types.CopyTagsFromSourceVolume,
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot,
			Tags: []ec2types.Tag{{Key: aws.String("ec2-isolation:execution"), Value: aws.String("exec-1")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	type snap struct{ Volume, State, Start, Desc, Exec, Name string }
	tag := func(tags []ec2types.Tag, k string) string {
		for _, t := range tags {
			if aws.ToString(t.Key) == k {
				return aws.ToString(t.Value)
			}
		}
		return ""
	}
	var got []snap
	for _, s := range out.Snapshots {
		got = append(got, snap{aws.ToString(s.VolumeId), string(s.State), s.StartTime.UTC().Format(time.RFC3339), aws.ToString(s.Description),
			tag(s.Tags, "ec2-isolation:execution"), tag(s.Tags, "Name")})
	}
	start := t0.Format(time.RFC3339)
	want := []snap{{volRoot, "pending", start, "isolation of " + instWeb, "exec-1", "root"}, {volData, "pending", start, "isolation of " + instWeb, "exec-1", ""}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CreateSnapshots (-want +got):\n%s", diff)
	}
	filtered := func(name, value string) int {
		d, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
			Filters: []ec2types.Filter{{Name: aws.String(name), Values: []string{value}}}})
		if err != nil {
			t.Fatalf("DescribeSnapshots %s=%s: %v", name, value, err)
		}
		return len(d.Snapshots)
	}
	if n := filtered("tag:ec2-isolation:execution", "exec-1"); n != 2 {
		t.Errorf("by tag: %d", n)
	}
	if n := filtered("volume-id", volData); n != 1 {
		t.Errorf("by volume: %d", n)
	}
	if n := filtered("status", "pending"); n != 2 {
		t.Errorf("pending: %d", n)
	}
	clock.Advance(10 * time.Second)
	if n := filtered("status", "completed"); n != 2 {
		t.Errorf("completed after the delay: %d", n)
	}
	other, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"999999999999"}})
	if err != nil || len(other.Snapshots) != 0 {
		t.Errorf("other owner: %v %+v", err, other)
	}
	noBoot, err := c.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{InstanceSpecification: &ec2types.InstanceSpecification{
		InstanceId: aws.String(instWeb), ExcludeBootVolume: aws.Bool(true)}})
	if err != nil || len(noBoot.Snapshots) != 1 || aws.ToString(noBoot.Snapshots[0].VolumeId) != volData {
		t.Errorf("ExcludeBootVolume: %v %+v", err, noBoot)
	}
}

func TestCreateTagsAndFilters(t *testing.T) {
	_, c, _ := start(t, baseScenario())
	ctx := context.Background()
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{instWeb, volRoot},
		Tags: []ec2types.Tag{{Key: aws.String("Isolated"), Value: aws.String("true")}}}); err != nil {
		t.Fatal(err)
	}
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("tag:Isolated"), Values: []string{"true"}}}})
	if err != nil || len(out.Reservations) != 1 || aws.ToString(out.Reservations[0].Instances[0].InstanceId) != instWeb {
		t.Errorf("tag filter: %v %+v", err, out)
	}
	vols, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{instWeb}}}})
	if err != nil || len(vols.Volumes) != 2 {
		t.Fatalf("DescribeVolumes: %v %+v", err, vols)
	}
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{"i-0123456789abcdef0"}, Tags: []ec2types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	wantErr(t, err, "InvalidInstanceID.NotFound", 400)
	vpcs, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{vpcA}})
	if err != nil || len(vpcs.Vpcs) != 1 || len(vpcs.Vpcs[0].Ipv6CidrBlockAssociationSet) != 1 {
		t.Errorf("DescribeVpcs: %v %+v", err, vpcs)
	}
	subs, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpcB}}}})
	if err != nil || len(subs.Subnets) != 1 || aws.ToString(subs.Subnets[0].SubnetId) != subB || aws.ToString(subs.Subnets[0].AvailabilityZone) != "us-east-1a" {
		t.Errorf("DescribeSubnets: %v %+v", err, subs)
	}
}

func TestIDErrors(t *testing.T) {
	_, c, _ := start(t, baseScenario())
	ctx := context.Background()
	_, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{"vol-0123456789abcdef0"}})
	wantErr(t, err, "InvalidVolume.NotFound", 400)
	_, err = c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{"volume-1"}})
	wantErr(t, err, "InvalidVolumeID.Malformed", 400)
	_, err = c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{"eni-0123456789abcdef0"}})
	wantErr(t, err, "InvalidNetworkInterfaceID.NotFound", 400)
	_, err = c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-0123456789abcdef0"}})
	wantErr(t, err, "InvalidVpcID.NotFound", 400)
	_, err = c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{"snap-0123456789abcdef0"}})
	wantErr(t, err, "InvalidSnapshot.NotFound", 400)
	_, err = c.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{AssociationIds: []string{"iip-assoc-0123456789abcdef0"}})
	wantErr(t, err, "InvalidAssociationID.NotFound", 400)
}
