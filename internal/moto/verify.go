package moto

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ec2-isolation/ec2-isolation/internal/inspect"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/snapshot"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Notification is one SNS message as the subscribed SQS queue received it (the SNS JSON envelope).
type Notification struct {
	Type      string `json:"Type"`
	MessageID string `json:"MessageId"`
	TopicArn  string `json:"TopicArn"`
	Subject   string `json:"Subject"`
	// Message is the body SNS chose for the sqs protocol: the "sqs" key of a MessageStructure json message,
	// else its "default" key (the Chatbot custom notification).
	Message string `json:"Message"`
}

// ReadNotifications receives and deletes every message waiting in the queue.
func ReadNotifications(ctx context.Context, c *sqs.Client, queueURL string) ([]Notification, error) {
	var out []Notification
	// SNS delivers to SQS asynchronously: wait up to a second for the first message, not for the end of the queue.
	wait := int32(1)
	for ; ; wait = 0 {
		r, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: wait})
		if err != nil {
			return out, fmt.Errorf("receive from %s: %w", queueURL, err)
		}
		if len(r.Messages) == 0 {
			return out, nil
		}
		for _, m := range r.Messages {
			var n Notification
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &n); err != nil {
				return out, fmt.Errorf("message %s is not an SNS envelope: %w: %s", aws.ToString(m.MessageId), err, aws.ToString(m.Body))
			}
			out = append(out, n)
			if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return out, fmt.Errorf("delete message: %w", err)
			}
		}
	}
}

// Verify reads the seeded account back through the SDK and returns what is not as a successful isolation must
// leave it: every ENI on only its own VPC's isolation group, that group without any rule, the isolation profile
// the only association, a snapshot of every volume, termination protection on, shutdown behaviour stop, no
// volume deleted on termination, the revoking policy on the instance's original role, the incident record with
// the pre-isolation groups, and one success notification delivered to the queue.
func Verify(ctx context.Context, c Clients, s Seeded) ([]string, error) {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	// The isolation group of each VPC.
	isolation := map[string]types.SecurityGroup{}
	sgs, err := c.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{
		{Name: aws.String("group-name"), Values: []string{IsolationGroupName}},
		{Name: aws.String("vpc-id"), Values: s.VPCs[:]},
	}})
	if err != nil {
		return nil, fmt.Errorf("describe isolation groups: %w", err)
	}
	for _, g := range sgs.SecurityGroups {
		isolation[aws.ToString(g.VpcId)] = g
	}
	for _, vpc := range s.VPCs {
		g, ok := isolation[vpc]
		if !ok {
			bad("%s has no group %s", vpc, IsolationGroupName)
			continue
		}
		if n := len(g.IpPermissions) + len(g.IpPermissionsEgress); n > 0 {
			bad("isolation group %s of %s has %d rules (in %v, out %v), want none", aws.ToString(g.GroupId), vpc, n, g.IpPermissions, g.IpPermissionsEgress)
		}
		if !hasTag(g.Tags, secgroup.TagManaged, "true") {
			bad("isolation group %s of %s is not tagged %s=true", aws.ToString(g.GroupId), vpc, secgroup.TagManaged)
		}
	}

	// Every ENI, as the instance reports them and as the group-id filter finds them.
	d, err := c.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{s.InstanceID}})
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", s.InstanceID, err)
	}
	reported := map[string][]string{}
	for _, r := range d.Reservations {
		for _, i := range r.Instances {
			for _, n := range i.NetworkInterfaces {
				var ids []string
				for _, g := range n.Groups {
					ids = append(ids, aws.ToString(g.GroupId))
				}
				reported[aws.ToString(n.NetworkInterfaceId)] = ids
			}
		}
	}
	for i, eni := range s.ENIs {
		want := aws.ToString(isolation[s.VPCs[i]].GroupId)
		got, ok := reported[eni]
		switch {
		case !ok:
			bad("%s is no longer attached to %s", eni, s.InstanceID)
		case !slices.Equal(got, []string{want}):
			bad("%s (in %s) carries %v, want only its VPC's isolation group [%s]", eni, s.VPCs[i], got, want)
		}
		// The ENI's own group set, through the filter (moto applies it to the ENI's own groups only).
		if on, err := carries(ctx, c.EC2, eni, s.Groups[i]); err != nil {
			return nil, err
		} else if on {
			bad("%s still carries its original group %s", eni, s.Groups[i])
		}
		if want != "" {
			if on, err := carries(ctx, c.EC2, eni, want); err != nil {
				return nil, err
			} else if !on {
				bad("the group-id filter does not find %s on %s", want, eni)
			}
		}
	}

	// The instance profile.
	as, err := c.EC2.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{s.InstanceID}}},
	})
	if err != nil {
		return nil, fmt.Errorf("describe profile associations: %w", err)
	}
	var profiles []string
	for _, a := range as.IamInstanceProfileAssociations {
		if a.State != types.IamInstanceProfileAssociationStateDisassociated && a.IamInstanceProfile != nil {
			profiles = append(profiles, fmt.Sprintf("%s (%s)", aws.ToString(a.IamInstanceProfile.Arn), a.State))
		}
	}
	if want := []string{s.IsolationProfileARN + " (associated)"}; !slices.Equal(profiles, want) {
		bad("instance profile associations %v, want %v", profiles, want)
	}

	// The snapshot set.
	snaps, err := c.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []types.Filter{
		{Name: aws.String("tag:" + snapshot.TagInstanceID), Values: []string{s.InstanceID}},
	}})
	if err != nil {
		return nil, fmt.Errorf("describe snapshots: %w", err)
	}
	var snapped []string
	for _, sn := range snaps.Snapshots {
		snapped = append(snapped, aws.ToString(sn.VolumeId))
		if !hasTag(sn.Tags, snapshot.TagExecution, "") {
			bad("snapshot %s has no %s tag", aws.ToString(sn.SnapshotId), snapshot.TagExecution)
		}
	}
	slices.Sort(snapped)
	if want := slices.Sorted(slices.Values(s.Volumes)); !slices.Equal(snapped, want) {
		bad("snapshots of volumes %v, want one of each of %v", snapped, want)
	}

	// Evidence preservation, the credential revocation and the incident record.
	problems = append(problems, verifyEvidence(ctx, c, s)...)

	// The notification, as a subscriber received it.
	msgs, err := ReadNotifications(ctx, c.SQS, s.QueueURL)
	if err != nil {
		return nil, err
	}
	if len(msgs) != 1 {
		bad("%d notifications in the queue, want 1", len(msgs))
	}
	for _, m := range msgs {
		if !strings.Contains(m.Subject, "SUCCEEDED") || !strings.Contains(m.Subject, s.InstanceID) {
			bad("notification subject %q, want a success naming %s", m.Subject, s.InstanceID)
		}
		var chat struct {
			Version string `json:"version"`
			Source  string `json:"source"`
			Content struct {
				Title       string `json:"title"`
				Description string `json:"description"`
			} `json:"content"`
		}
		if err := json.Unmarshal([]byte(m.Message), &chat); err != nil {
			bad("the queue received %q, want the Chatbot custom notification (the default body): %v", m.Message, err)
		} else if chat.Version != "1.0" || chat.Source != "custom" || !strings.Contains(chat.Content.Title+chat.Content.Description, s.InstanceID) {
			bad("Chatbot notification %+v: want version 1.0, source custom, naming %s", chat, s.InstanceID)
		}
	}
	return problems, nil
}

// carries says whether the ENI's own group set includes group, through DescribeNetworkInterfaces' group-id filter.
func carries(ctx context.Context, c *ec2.Client, eni, group string) (bool, error) {
	out, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		NetworkInterfaceIds: []string{eni},
		Filters:             []types.Filter{{Name: aws.String("group-id"), Values: []string{group}}},
	})
	if err != nil {
		return false, fmt.Errorf("describe %s with group-id %s: %w", eni, group, err)
	}
	return len(out.NetworkInterfaces) == 1, nil
}

// hasTag says whether tags has key (with value, unless value is "").
func hasTag(tags []types.Tag, key, value string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == key && (value == "" || aws.ToString(t.Value) == value) {
			return true
		}
	}
	return false
}

// verifyEvidence checks what "Preserve evidence", "Revoke credentials" and "Record pre-isolation state" leave.
func verifyEvidence(ctx context.Context, c Clients, s Seeded) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	r, err := inspect.ReadRestorable(ctx, inspect.Clients{EC2: c.EC2, AutoScaling: c.AutoScaling, ELB: c.ELB, IAM: c.IAM}, s.InstanceID,
		"arn:aws:iam::"+AccountID+":instance-profile/"+InstanceProfileName)
	if err != nil {
		return []string{err.Error()}
	}
	if !r.TerminationProtection || r.ShutdownBehavior != "stop" {
		bad("termination protection %v, shutdown behaviour %q: want on and stop", r.TerminationProtection, r.ShutdownBehavior)
	}
	// moto answers DescribeInstanceAttribute blockDeviceMapping with no mapping (docs/moto.md), so r's flags prove
	// nothing there: DescribeInstances has them, and every seeded volume must be found and off.
	flags, err := deleteOnTermination(ctx, c.EC2, s.InstanceID)
	if err != nil {
		bad("%v", err)
	}
	for _, v := range s.Volumes {
		switch del, ok := flags[v]; {
		case !ok:
			bad("volume %s is not attached to %s any more", v, s.InstanceID)
		case del:
			bad("volume %s is still deleted on termination", v)
		}
	}
	if r.Role == nil {
		bad("the instance's original role is not readable")
	} else if doc, ok := r.Role.Inline["ec2-isolation-revoke-"+s.InstanceID]; !ok {
		bad("role %s has no revoking policy: %v", r.Role.Name, r.Role.Inline)
	} else if !strings.Contains(doc, `"ec2:SourceInstanceARN"`) || !strings.Contains(doc, "instance/"+s.InstanceID) {
		bad("revoking policy of %s: %s", r.Role.Name, doc)
	}
	obj, err := c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(BucketName), Key: aws.String(workflow.IncidentKey(AccountID, Region, s.InstanceID))})
	if err != nil {
		return append(problems, fmt.Sprintf("read the incident record: %v", err))
	}
	defer obj.Body.Close()
	var file workflow.IncidentFile
	if err := json.NewDecoder(obj.Body).Decode(&file); err != nil {
		return append(problems, fmt.Sprintf("incident record: %v", err))
	}
	if len(file.Incidents) != 1 || len(file.Incidents[0].PreIsolation.Record.NetworkInterfaces) != len(s.ENIs) {
		bad("incident record: %d incidents, want 1 with the instance's %d ENIs", len(file.Incidents), len(s.ENIs))
	} else {
		for _, n := range file.Incidents[0].PreIsolation.Record.NetworkInterfaces {
			for _, g := range n.Groups {
				if !slices.Contains(s.Groups[:], g) {
					bad("incident record: ENI %s's pre-isolation groups %v, want only the seeded groups %v", n.ID, n.Groups, s.Groups)
				}
			}
			if len(n.Groups) == 0 {
				bad("incident record: ENI %s has no pre-isolation group", n.ID)
			}
		}
	}
	return problems
}

// deleteOnTermination maps each EBS volume of the instance to its delete-on-termination flag, as DescribeInstances
// reports it.
func deleteOnTermination(ctx context.Context, c *ec2.Client, instance string) (map[string]bool, error) {
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instance}})
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", instance, err)
	}
	flags := map[string]bool{}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			for _, b := range i.BlockDeviceMappings {
				if b.Ebs != nil {
					flags[aws.ToString(b.Ebs.VolumeId)] = aws.ToBool(b.Ebs.DeleteOnTermination)
				}
			}
		}
	}
	return flags, nil
}
