// Package preflight checks, without changing anything, that the configured AWS account could isolate an
// instance: every mutating EC2 call of the workflow is made with DryRun (EC2 answers DryRunOperation when the
// caller may make it, UnauthorizedOperation when not), the names the workflow needs resolve, the topic is
// reachable. The calls that have no DryRun parameter (the instance profile associations, iam:PassRole,
// sns:Publish) are put to the IAM policy simulator when the caller may use it, and reported unverified otherwise.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/snapshot"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/targets"
	"github.com/ec2-isolation/ec2-isolation/internal/validate"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Status of a check.
type Status string

const (
	Pass Status = "pass"
	Fail Status = "fail"
	// Unverified: the check could not tell (no DryRun for the call and no policy simulator, or a permission the
	// workflow itself does not need was refused to preflight).
	Unverified Status = "unverified"
	// Skipped: not applicable (no instance given, nothing of that kind on the instance, an earlier check failed).
	Skipped Status = "skip"
)

// Check is one row of the report.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Missing is the IAM action whose absence failed (or left unverified) the check.
	Missing string `json:"missingPermission,omitempty"`
}

// Report is the outcome of Run.
type Report struct {
	Account    string  `json:"account,omitempty"`
	Region     string  `json:"region"`
	Caller     string  `json:"caller,omitempty"`
	InstanceID string  `json:"instanceId,omitempty"`
	Names      Names   `json:"names"`
	Checks     []Check `json:"checks"`
	// Record is what "Validate and record" read of the instance (nil without an instance, or when it refused).
	Record *workflow.Record `json:"record,omitempty"`
}

// Count returns how many checks have the status.
func (r Report) Count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// OK is true when no check failed.
func (r Report) OK() bool { return r.Count(Fail) == 0 }

// EC2API is the part of the EC2 client the checks use: the workflow's reads, and its writes with DryRun.
type EC2API interface {
	validate.API
	DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, opts ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, opts ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	DescribeSnapshots(ctx context.Context, in *ec2.DescribeSnapshotsInput, opts ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
	CreateSecurityGroup(ctx context.Context, in *ec2.CreateSecurityGroupInput, opts ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error)
	RevokeSecurityGroupIngress(ctx context.Context, in *ec2.RevokeSecurityGroupIngressInput, opts ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error)
	RevokeSecurityGroupEgress(ctx context.Context, in *ec2.RevokeSecurityGroupEgressInput, opts ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupEgressOutput, error)
	ModifyNetworkInterfaceAttribute(ctx context.Context, in *ec2.ModifyNetworkInterfaceAttributeInput, opts ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error)
	CreateSnapshots(ctx context.Context, in *ec2.CreateSnapshotsInput, opts ...func(*ec2.Options)) (*ec2.CreateSnapshotsOutput, error)
	CreateTags(ctx context.Context, in *ec2.CreateTagsInput, opts ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	ModifyInstanceAttribute(ctx context.Context, in *ec2.ModifyInstanceAttributeInput, opts ...func(*ec2.Options)) (*ec2.ModifyInstanceAttributeOutput, error)
}

// IAMAPI is the part of the IAM client the checks use.
type IAMAPI interface {
	GetInstanceProfile(ctx context.Context, in *iam.GetInstanceProfileInput, opts ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
	GetRole(ctx context.Context, in *iam.GetRoleInput, opts ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	SimulatePrincipalPolicy(ctx context.Context, in *iam.SimulatePrincipalPolicyInput, opts ...func(*iam.Options)) (*iam.SimulatePrincipalPolicyOutput, error)
}

// SNSAPI is the part of the SNS client the checks use.
type SNSAPI interface {
	GetTopicAttributes(ctx context.Context, in *sns.GetTopicAttributesInput, opts ...func(*sns.Options)) (*sns.GetTopicAttributesOutput, error)
}

// Clients reach the account. IAM and SNS may be nil (an emulator without them): their checks are unverified.
type Clients struct {
	EC2 EC2API
	IAM IAMAPI
	SNS SNSAPI
	// S3, AutoScaling and ELB (issue 15, item 2) may be nil too: their checks are then unverified.
	S3          S3API
	AutoScaling AutoScalingAPI
	ELB         targets.API
}

// Input says what to check.
type Input struct {
	// Identity is the caller (Identify); its account forms the instance's ARN.
	Identity Identity
	// IdentityErr is why Identify failed, if it did: reported as the first check.
	IdentityErr error
	Names       Names
	// NamesFrom says where the names came from ("flags", "stack NAME").
	NamesFrom string
	// InstanceID is empty for the account-wide checks only.
	InstanceID string
}

// Run makes every check and returns the report. It never returns early: one failed check does not hide others.
func Run(ctx context.Context, c Clients, in Input) Report {
	p := &prober{c: c, in: in}
	region := c.EC2.Options().Region
	p.rep = Report{Account: in.Identity.Account, Region: region, Caller: in.Identity.ARN, InstanceID: in.InstanceID, Names: in.Names}

	if in.IdentityErr != nil {
		p.add(fromErr("caller identity", in.IdentityErr))
	} else {
		p.add(Check{Name: "caller identity", Status: Pass, Detail: fmt.Sprintf("%s in account %s, %s", in.Identity.ARN, in.Identity.Account, region)})
	}
	if in.NamesFrom != "" {
		p.add(Check{Name: "settings", Status: Pass, Detail: fmt.Sprintf("from %s: group %q, profile %q, topic %s, tag %s=%s, tracking %s",
			in.NamesFrom, in.Names.GroupName, in.Names.ProfileName, in.Names.TopicARN, in.Names.TagKey, in.Names.TagValue, in.Names.Tracking)})
	}
	roleARN := p.profile(ctx)
	p.topic(ctx)
	p.bucket(ctx)

	if in.InstanceID == "" {
		p.add(Check{Name: "instance", Status: Skipped, Detail: "no --instance: only the account-wide checks ran"})
	} else if rec := p.instance(ctx, region); rec != nil {
		p.rep.Record = rec
		p.tag(ctx, rec)
		groups := p.groups(ctx, rec)
		p.interfaces(ctx, rec, groups)
		p.snapshots(ctx, rec)
		p.associations(ctx, rec, roleARN)
		p.evidence(ctx, rec)
		p.revocation(ctx, rec)
	}
	p.publish(ctx)
	return p.rep
}

type prober struct {
	c   Clients
	in  Input
	rep Report
	// simErr is why the policy simulator cannot be used, once known.
	simErr    string
	principal string
}

func (p *prober) add(c Check) { p.rep.Checks = append(p.rep.Checks, c) }

// profile checks that the isolation instance profile exists and has a role; it returns the role's ARN.
func (p *prober) profile(ctx context.Context) string {
	name := "isolation instance profile " + quote(p.in.Names.ProfileName)
	if p.c.IAM == nil {
		p.add(Check{Name: name, Status: Unverified, Detail: "no IAM client"})
		return ""
	}
	out, err := p.c.IAM.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(p.in.Names.ProfileName)})
	switch {
	case steperr.Code(err) == "NoSuchEntity":
		p.add(Check{Name: name, Status: Fail, Detail: "does not exist: deploy the stack, or pass the right --profile-name"})
		return ""
	case isDenied(err):
		// The workflow does not read the profile; only preflight does.
		p.add(Check{Name: name, Status: Unverified, Detail: "preflight may not read it (the isolation itself does not need to)", Missing: deniedAction(err)})
		return ""
	case err != nil:
		p.add(fromErr(name, err))
		return ""
	}
	ip := out.InstanceProfile
	if len(ip.Roles) == 0 {
		p.add(Check{Name: name, Status: Fail, Detail: aws.ToString(ip.Arn) + " has no role: EC2 gives the instance no credentials, but the template's profile has the deny-all role"})
		return ""
	}
	role := aws.ToString(ip.Roles[0].Arn)
	p.add(Check{Name: name, Status: Pass, Detail: fmt.Sprintf("%s, role %s", aws.ToString(ip.Arn), role)})
	return role
}

// topic checks that the notification topic exists and can be read.
func (p *prober) topic(ctx context.Context) {
	name := "notification topic"
	if p.c.SNS == nil {
		p.add(Check{Name: name, Status: Unverified, Detail: "no SNS client"})
		return
	}
	_, err := p.c.SNS.GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: aws.String(p.in.Names.TopicARN)})
	switch code := steperr.Code(err); {
	case err == nil:
		p.add(Check{Name: name, Status: Pass, Detail: p.in.Names.TopicARN + " is reachable"})
	case code == "NotFound" || code == "NotFoundException":
		p.add(Check{Name: name, Status: Fail, Detail: p.in.Names.TopicARN + " does not exist in this account and region"})
	case code == "InvalidParameter":
		p.add(Check{Name: name, Status: Fail, Detail: fmt.Sprintf("%q is not a topic ARN: %s", p.in.Names.TopicARN, message(err))})
	case isDenied(err):
		p.add(Check{Name: name, Status: Unverified, Detail: "preflight may not read it (the isolation needs only sns:Publish)", Missing: deniedAction(err)})
	default:
		p.add(fromErr(name, err))
	}
}

// instance runs "Validate and record" itself (read-only): the instance exists, can be isolated, and its state can
// be recorded.
func (p *prober) instance(ctx context.Context, region string) *workflow.Record {
	name := "instance " + p.in.InstanceID
	if p.in.IdentityErr != nil {
		p.add(Check{Name: name, Status: Skipped, Detail: "the event needs the account id (sts:GetCallerIdentity failed)"})
		return nil
	}
	env := p.in.Names.Env()
	s, err := validate.SettingsFromEnv(func(k string) string { return env[k] })
	if err != nil {
		p.add(Check{Name: name, Status: Fail, Detail: err.Error()})
		return nil
	}
	h := validate.New(p.c.EC2, s, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	rec, err := h.Observe(ctx, workflow.ValidateInput{ // the tag is what run sets: not checked here
		Event:         Event(p.in.Identity, region, p.in.InstanceID, p.in.Names, time.Now()),
		ExecutionName: "preflight",
	})
	if err != nil {
		p.add(fromErr(name, err))
		return nil
	}
	vols := len(rec.Volumes)
	prof := "no instance profile"
	if rec.ProfileAssociation != nil {
		prof = "profile " + rec.ProfileAssociation.ProfileARN
	}
	p.add(Check{Name: name, Status: Pass, Detail: fmt.Sprintf("%s, %s in %s (%s), %s, %s",
		rec.State, Count(len(rec.NetworkInterfaces), "ENI"), Count(len(rec.VpcIDs), "VPC"), strings.Join(rec.VpcIDs, ", "), Count(vols, "volume"), prof)})
	return &rec
}

// groups checks, per VPC of the instance, that the isolation group exists or may be created; it returns the
// existing groups' ids by VPC.
func (p *prober) groups(ctx context.Context, rec *workflow.Record) map[string]string {
	mode := p.in.Names.Tracking
	names := []string{p.in.Names.GroupName}
	if mode == secgroup.ModeUntrackFirst {
		names = append(names, secgroup.Settings{GroupName: p.in.Names.GroupName}.UntrackGroupName())
	}
	lookup := slices.Clone(names)
	for _, n := range names {
		lookup = append(lookup, secgroup.DerivedName(n))
	}
	out, err := p.c.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: rec.VpcIDs},
		{Name: aws.String("group-name"), Values: lookup},
	}})
	if err != nil {
		p.add(fromErr("isolation groups", err))
		return nil
	}
	found := map[[2]string]types.SecurityGroup{}
	for _, g := range out.SecurityGroups {
		found[[2]string{aws.ToString(g.VpcId), aws.ToString(g.GroupName)}] = g
	}
	ids := map[string]string{}
	for _, vpc := range rec.VpcIDs {
		for i, gname := range names {
			name := fmt.Sprintf("group %q in %s", gname, vpc)
			g, ok := found[[2]string{vpc, gname}]
			if ok && !secgroup.Managed(&g) {
				// Not ours: the workflow leaves it alone and uses a group of its own under the derived name.
				foreign, derived := aws.ToString(g.GroupId), secgroup.DerivedName(gname)
				p.add(Check{Name: name, Status: Pass, Detail: fmt.Sprintf("%s was not created by ec2-isolation (no %s=true tag): "+
					"the workflow leaves it alone and uses %q in this VPC", foreign, secgroup.TagManaged, derived)})
				gname, name = derived, fmt.Sprintf("group %q in %s", derived, vpc)
				g, ok = found[[2]string{vpc, gname}]
			}
			if !ok {
				p.add(dryRun(name, "will be created", func() error {
					_, err := p.c.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
						DryRun: aws.Bool(true), VpcId: aws.String(vpc), GroupName: aws.String(gname),
						Description: aws.String("ec2-isolation preflight"),
						TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup, Tags: []types.Tag{
							{Key: aws.String(secgroup.TagManaged), Value: aws.String("true")},
						}}},
					})
					return err
				}))
				continue
			}
			id := aws.ToString(g.GroupId)
			if !secgroup.Managed(&g) {
				p.add(Check{Name: name, Status: Fail, Detail: fmt.Sprintf("%s exists but was not created by ec2-isolation "+
					"(no %s=true tag) and neither is the group with the base name: the workflow refuses them; rename one, or tag it if it is meant to be the isolation group",
					id, secgroup.TagManaged)})
				continue
			}
			if i == 0 {
				ids[vpc] = id
			}
			rules := len(g.IpPermissions) + len(g.IpPermissionsEgress)
			if i > 0 || rules == 0 {
				p.add(Check{Name: name, Status: Pass, Detail: id + " exists"})
				continue
			}
			// The isolation group must be empty: the workflow will revoke what someone added.
			p.add(dryRun(name, fmt.Sprintf("%s exists with %d rules, which will be revoked", id, rules), func() error {
				if len(g.IpPermissions) > 0 {
					_, err := p.c.EC2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{DryRun: aws.Bool(true), GroupId: g.GroupId, IpPermissions: g.IpPermissions})
					if steperr.Code(err) != "DryRunOperation" {
						return err
					}
				}
				if len(g.IpPermissionsEgress) > 0 {
					_, err := p.c.EC2.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{DryRun: aws.Bool(true), GroupId: g.GroupId, IpPermissions: g.IpPermissionsEgress})
					return err
				}
				return dryRunOK
			}))
		}
	}
	return ids
}

// interfaces checks that the instance's ENIs can be read and that each may be put on its isolation group.
func (p *prober) interfaces(ctx context.Context, rec *workflow.Record, groups map[string]string) {
	out, err := p.c.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{rec.InstanceID}},
	}})
	if err != nil {
		p.add(fromErr("network interfaces of "+rec.InstanceID, err))
		return
	}
	if len(out.NetworkInterfaces) == 0 {
		p.add(Check{Name: "network interfaces of " + rec.InstanceID, Status: Fail, Detail: "none attached"})
		return
	}
	for _, n := range rec.NetworkInterfaces {
		// The isolation group where it exists; else the ENI's own groups: the permission is the same.
		target, what := []string{groups[n.VpcID]}, "its isolation group "+groups[n.VpcID]
		if groups[n.VpcID] == "" {
			target, what = n.Groups, "a group (its isolation group does not exist yet)"
		}
		p.add(dryRun("apply group to "+n.ID, "may be put on "+what, func() error {
			_, err := p.c.EC2.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
				DryRun: aws.Bool(true), NetworkInterfaceId: aws.String(n.ID), Groups: target,
			})
			return err
		}))
	}
}

// snapshots checks that the instance's volumes may be snapshotted, with the tags the workflow puts on them.
func (p *prober) snapshots(ctx context.Context, rec *workflow.Record) {
	name := "snapshot " + Count(len(rec.Volumes), "volume")
	if _, err := p.c.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []types.Filter{
		{Name: aws.String("tag:" + snapshot.TagInstanceID), Values: []string{rec.InstanceID}},
	}}); err != nil {
		p.add(fromErr(name, err))
		return
	}
	if len(rec.Volumes) == 0 {
		p.add(Check{Name: name, Status: Skipped, Detail: "the instance has no EBS volume"})
		return
	}
	p.add(dryRun(name, "one multi-volume snapshot set may be created and tagged", func() error {
		_, err := p.c.EC2.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{
			DryRun:                aws.Bool(true),
			InstanceSpecification: &types.InstanceSpecification{InstanceId: aws.String(rec.InstanceID)},
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSnapshot, Tags: []types.Tag{
				{Key: aws.String(snapshot.TagInstanceID), Value: aws.String(rec.InstanceID)},
				{Key: aws.String(snapshot.TagExecution), Value: aws.String("preflight")},
			}}},
		})
		return err
	}))
}

// tag checks that the caller may set the isolation tag on the instance: isolation run sets it before it starts, so
// that the tag and everything that reads it agree with the break-glass run.
func (p *prober) tag(ctx context.Context, rec *workflow.Record) {
	key, value := p.in.Names.TagKey, p.in.Names.TagValue
	name := fmt.Sprintf("tag %s=%s", key, value)
	if rec.Tags[key] == value {
		p.add(Check{Name: name, Status: Pass, Detail: "the instance already carries it"})
		return
	}
	p.add(dryRun(name, "may be set on "+rec.InstanceID, func() error {
		_, err := p.c.EC2.CreateTags(ctx, &ec2.CreateTagsInput{DryRun: aws.Bool(true), Resources: []string{rec.InstanceID},
			Tags: []types.Tag{{Key: aws.String(key), Value: aws.String(value)}}})
		return err
	}))
}

// associations checks the instance profile calls, which have no DryRun, with the policy simulator.
func (p *prober) associations(ctx context.Context, rec *workflow.Record, roleARN string) {
	if a := rec.ProfileAssociation; a != nil && !isProfileNamed(a.ProfileARN, p.in.Names.ProfileName) {
		p.simulate(ctx, "detach instance profile", rec.InstanceARN, "ec2:DisassociateIamInstanceProfile")
	}
	p.simulate(ctx, "attach isolation profile", rec.InstanceARN, "ec2:AssociateIamInstanceProfile", "ec2:ReplaceIamInstanceProfileAssociation")
	if roleARN != "" {
		p.simulate(ctx, "pass isolation role", roleARN, "iam:PassRole")
	} else {
		p.add(Check{Name: "pass isolation role", Status: Skipped, Detail: "the isolation profile's role is unknown"})
	}
}

// publish checks sns:Publish, which has no DryRun, with the policy simulator.
func (p *prober) publish(ctx context.Context) {
	p.simulate(ctx, "publish notification", p.in.Names.TopicARN, "sns:Publish")
}

// simulate asks the IAM policy simulator whether the caller may make the actions on resource.
func (p *prober) simulate(ctx context.Context, name, resource string, actions ...string) {
	acts := strings.Join(actions, ", ")
	if p.simErr == "" {
		p.principal, p.simErr = p.policySource(ctx)
	}
	if p.simErr != "" {
		p.add(Check{Name: name, Status: Unverified, Detail: acts + " has no DryRun, and " + p.simErr})
		return
	}
	if p.principal == "root" {
		p.add(Check{Name: name, Status: Pass, Detail: acts + ": the account's root user may make every call"})
		return
	}
	out, err := p.c.IAM.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String(p.principal), ActionNames: actions, ResourceArns: []string{resource},
	}, noRetry)
	if err != nil {
		p.simErr = simulatorError(err)
		p.add(Check{Name: name, Status: Unverified, Detail: acts + " has no DryRun, and " + p.simErr})
		return
	}
	var denied, conditional []string
	for _, r := range out.EvaluationResults {
		if r.EvalDecision == "allowed" {
			continue
		}
		a := aws.ToString(r.EvalActionName)
		// With ResourceArns given, the keys a condition needed are in ResourceSpecificResults, not at the top
		// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_EvaluationResult.html).
		missing := slices.Clone(r.MissingContextValues)
		for _, rs := range r.ResourceSpecificResults {
			for _, k := range rs.MissingContextValues {
				if !slices.Contains(missing, k) {
					missing = append(missing, k)
				}
			}
		}
		if len(missing) > 0 {
			conditional = append(conditional, fmt.Sprintf("%s (needs %s)", a, strings.Join(missing, ", ")))
		} else {
			denied = append(denied, a)
		}
	}
	switch {
	case len(denied) > 0:
		p.add(Check{Name: name, Status: Fail, Detail: acts + ": the IAM policy simulator says not allowed on " + resource, Missing: strings.Join(denied, ", ")})
	case len(conditional) > 0:
		p.add(Check{Name: name, Status: Unverified, Detail: acts + ": the IAM policy simulator allows it only under conditions it cannot evaluate: " + strings.Join(conditional, "; ")})
	default:
		p.add(Check{Name: name, Status: Pass, Detail: acts + ": the IAM policy simulator says allowed on " + resource})
	}
}

// policySource is the IAM principal whose policies the simulator evaluates: the user, or the role of an assumed
// role session. It returns why the simulator cannot be used otherwise.
func (p *prober) policySource(ctx context.Context) (string, string) {
	if p.c.IAM == nil {
		return "", "no IAM client"
	}
	caller := p.in.Identity.ARN
	parts := strings.SplitN(caller, ":", 6)
	if len(parts) != 6 {
		return "", "the caller is unknown"
	}
	resource := parts[5]
	switch {
	case parts[2] == "iam" && resource == "root":
		return "root", ""
	case parts[2] == "iam" && strings.HasPrefix(resource, "user/"):
		return caller, ""
	case parts[2] == "sts" && strings.HasPrefix(resource, "assumed-role/"):
		role := strings.Split(resource, "/")[1]
		out, err := p.c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(role)}, noRetry)
		if err != nil {
			return "", fmt.Sprintf("the role %s of the session cannot be read for the IAM policy simulator (%s)", role, errSummary(err))
		}
		return aws.ToString(out.Role.Arn), ""
	}
	return "", fmt.Sprintf("the IAM policy simulator cannot evaluate the caller %s", caller)
}

func simulatorError(err error) string {
	if isDenied(err) {
		return "the IAM policy simulator is refused to the caller (" + deniedAction(err) + ")"
	}
	return "the IAM policy simulator is unavailable (" + errSummary(err) + ")"
}

// noRetry: preflight's optional calls fail fast (an emulator may not implement them; a 500 is not worth six tries).
func noRetry(o *iam.Options) { o.RetryMaxAttempts = 1 }

// dryRunOK stands for a DryRunOperation answer when a check makes several DryRun calls.
var dryRunOK = &smithy.GenericAPIError{Code: "DryRunOperation", Message: "Request would have succeeded, but DryRun flag is set."}

// dryRun makes a call with DryRun and reads the answer: DryRunOperation means allowed.
func dryRun(name, allowed string, call func() error) Check {
	err := call()
	switch {
	case steperr.Code(err) == "DryRunOperation":
		return Check{Name: name, Status: Pass, Detail: allowed + " (DryRun allowed)"}
	case err == nil:
		// The endpoint ignored DryRun: the call was made for real.
		return Check{Name: name, Status: Fail, Detail: "the call succeeded although DryRun was set: the endpoint ignores DryRun, and the change was made"}
	}
	return fromErr(name, err)
}

// fromErr is the failed check for err: the missing permission when the caller was denied.
func fromErr(name string, err error) Check {
	c := Check{Name: name, Status: Fail, Detail: errSummary(err)}
	if isDenied(err) {
		c.Missing = deniedAction(err)
		c.Detail = "denied: " + message(err)
	}
	return c
}

// deniedCodes are the error codes of a refused permission: EC2 UnauthorizedOperation, IAM/STS/CloudFormation
// AccessDenied, SNS AuthorizationError (moto answers AccessDenied for EC2 too: docs/moto.md).
var deniedCodes = map[string]bool{
	"UnauthorizedOperation": true, "AccessDenied": true, "AccessDeniedException": true, "AuthorizationError": true,
}

// isDenied: a refusal code, or an HTTP 403 whose error the SDK could not read (moto's IAM enforcement answers
// SNS and IAM calls in EC2's error format, which their clients report as UnknownError; docs/moto.md).
func isDenied(err error) bool {
	if deniedCodes[steperr.Code(err)] {
		return true
	}
	var re *smithyhttp.ResponseError
	return steperr.Code(err) == "UnknownError" && errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden
}

// deniedAction is the IAM action of the refused call: the service's prefix and the operation's name.
func deniedAction(err error) string {
	var oe *smithy.OperationError
	if !errors.As(err, &oe) {
		return ""
	}
	prefix := map[string]string{"EC2": "ec2", "IAM": "iam", "SNS": "sns", "STS": "sts", "CloudFormation": "cloudformation",
		"S3": "s3", "Auto Scaling": "autoscaling", "Elastic Load Balancing v2": "elasticloadbalancing"}[oe.ServiceID]
	if prefix == "" {
		prefix = strings.ToLower(oe.ServiceID)
	}
	return prefix + ":" + oe.OperationName
}

// errSummary is "code: message" of an AWS error, else the error.
func errSummary(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + oneLine(ae.ErrorMessage())
	}
	return oneLine(err.Error())
}

func message(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return oneLine(ae.ErrorMessage())
	}
	return oneLine(err.Error())
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 240 {
		s = s[:240] + "…"
	}
	return s
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// isProfileNamed says whether the instance profile ARN names the profile (the last path segment).
func isProfileNamed(arn, name string) bool {
	_, res, ok := strings.Cut(arn, ":instance-profile/")
	return ok && strings.EqualFold(res[strings.LastIndex(res, "/")+1:], name)
}

// Count is "1 thing" or "n things" (an English plural in s).
func Count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

func iamProfileInput(name string) *iam.GetInstanceProfileInput {
	return &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)}
}
