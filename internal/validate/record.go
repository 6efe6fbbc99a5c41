package validate

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// buildRecord turns what EC2 said into the record. Lists are sorted so that two runs give equal records.
func buildRecord(t Target, st instanceState) (workflow.Record, error) {
	i := st.Instance
	rec := workflow.Record{
		InstanceID:            t.InstanceID,
		InstanceARN:           fmt.Sprintf("arn:%s:ec2:%s:%s:instance/%s", t.Partition, t.Region, t.Account, t.InstanceID),
		Account:               t.Account,
		Region:                t.Region,
		DisableAPITermination: st.DisableAPITermination,
		ShutdownBehavior:      st.ShutdownBehavior,
		VpcIDs:                []string{},
		NetworkInterfaces:     []workflow.NetworkInterface{},
		Volumes:               []workflow.Volume{},
		InstanceLifecycle:     string(i.InstanceLifecycle),
	}
	if len(i.Tags) > 0 {
		rec.Tags = map[string]string{}
		for _, t := range i.Tags {
			rec.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	if i.Placement != nil {
		rec.AvailabilityZone = aws.ToString(i.Placement.AvailabilityZone)
	}
	if i.State != nil {
		rec.State = string(i.State.Name)
	}

	for _, n := range i.NetworkInterfaces {
		eni := workflow.NetworkInterface{
			ID:       aws.ToString(n.NetworkInterfaceId),
			VpcID:    aws.ToString(n.VpcId),
			SubnetID: aws.ToString(n.SubnetId),
			Groups:   []string{},
		}
		if eni.ID == "" || eni.VpcID == "" {
			// Every later step keys on these; better refuse now than isolate half the instance.
			return rec, &steperr.InstanceNotIsolatable{InstanceID: t.InstanceID,
				Reason: fmt.Sprintf("EC2 describes a network interface without id or VPC (%q in %q)", eni.ID, eni.VpcID)}
		}
		if n.Attachment != nil {
			eni.DeviceIndex = aws.ToInt32(n.Attachment.DeviceIndex)
		}
		for _, g := range n.Groups {
			eni.Groups = append(eni.Groups, aws.ToString(g.GroupId))
		}
		slices.Sort(eni.Groups)
		rec.NetworkInterfaces = append(rec.NetworkInterfaces, eni)
		rec.VpcIDs = append(rec.VpcIDs, eni.VpcID)
	}
	slices.SortFunc(rec.NetworkInterfaces, func(a, b workflow.NetworkInterface) int {
		return cmp.Or(cmp.Compare(a.DeviceIndex, b.DeviceIndex), cmp.Compare(a.ID, b.ID))
	})
	slices.Sort(rec.VpcIDs)
	rec.VpcIDs = slices.Compact(rec.VpcIDs)

	for _, b := range i.BlockDeviceMappings {
		if b.Ebs == nil {
			continue
		}
		rec.Volumes = append(rec.Volumes, workflow.Volume{
			VolumeID:            aws.ToString(b.Ebs.VolumeId),
			DeviceName:          aws.ToString(b.DeviceName),
			DeleteOnTermination: aws.ToBool(b.Ebs.DeleteOnTermination),
		})
	}
	slices.SortFunc(rec.Volumes, func(a, b workflow.Volume) int { return cmp.Compare(a.DeviceName, b.DeviceName) })

	rec.ProfileAssociation = activeAssociation(st.Associations)
	return rec, nil
}

// activeAssociation is the association that gives the instance its credentials now or in a moment
// (associating or associated); one being removed is not what a release should restore.
func activeAssociation(as []types.IamInstanceProfileAssociation) *workflow.ProfileAssociation {
	for _, a := range as {
		switch a.State {
		case types.IamInstanceProfileAssociationStateAssociated, types.IamInstanceProfileAssociationStateAssociating:
			pa := &workflow.ProfileAssociation{AssociationID: aws.ToString(a.AssociationId), State: string(a.State)}
			if a.IamInstanceProfile != nil {
				pa.ProfileARN = aws.ToString(a.IamInstanceProfile.Arn)
			}
			return pa
		}
	}
	return nil
}
