package bench

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ec2-isolation/ec2-isolation/internal/snapshot"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// stormEvidence reads back, through the SDK and without throttling, what each storm instance must have once its
// execution ended: termination protection on, shutdown behaviour stop, no volume deleted on termination (the
// evidence), a snapshot of every volume, and its incident record.
func (b *bench) stormEvidence(ctx context.Context, h *harness, c *ec2.Client, ids []string, res *StormResult) error {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	volumes := map[string]int{} // instance -> EBS volumes
	kept := map[string]bool{}   // instance -> no volume deleted on termination
	p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{{Name: aws.String("subnet-id"), Values: []string{benchSubnet}}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("describe the storm's instances: %w", err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				id := aws.ToString(in.InstanceId)
				kept[id] = true
				for _, m := range in.BlockDeviceMappings {
					if m.Ebs == nil {
						continue
					}
					volumes[id]++
					if aws.ToBool(m.Ebs.DeleteOnTermination) {
						kept[id] = false
					}
				}
			}
		}
	}
	snaps := map[string]int{}
	sp := ec2.NewDescribeSnapshotsPaginator(c, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{snapshot.TagInstanceID}}}})
	for sp.HasMorePages() {
		page, err := sp.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("describe the storm's snapshots: %w", err)
		}
		for _, s := range page.Snapshots {
			for _, t := range s.Tags {
				if aws.ToString(t.Key) == snapshot.TagInstanceID {
					snaps[aws.ToString(t.Value)]++
				}
			}
		}
	}
	s3c := s3.NewFromConfig(h.srv.AWSConfig("bench-check"), func(o *s3.Options) { o.UsePathStyle = true })
	bucket := b.env["INCIDENT_BUCKET"]
	var missing []string
	miss := func(id, what string) {
		if len(missing) < 5 {
			missing = append(missing, id+": "+what)
		}
	}
	for _, id := range ids {
		ok := true
		term, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id),
			Attribute: ec2types.InstanceAttributeNameDisableApiTermination})
		if err != nil {
			return fmt.Errorf("read back %s: %w", id, err)
		}
		if term.DisableApiTermination == nil || !aws.ToBool(term.DisableApiTermination.Value) {
			ok = false
			miss(id, "termination protection off")
		}
		shut, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id),
			Attribute: ec2types.InstanceAttributeNameInstanceInitiatedShutdownBehavior})
		if err != nil {
			return fmt.Errorf("read back %s: %w", id, err)
		}
		if shut.InstanceInitiatedShutdownBehavior == nil || aws.ToString(shut.InstanceInitiatedShutdownBehavior.Value) != "stop" {
			ok = false
			miss(id, "shutdown behaviour not stop")
		}
		if !kept[id] {
			ok = false
			miss(id, "a volume deleted on termination")
		}
		if snaps[id] >= volumes[id] {
			res.Snapshots++
		} else {
			miss(id, fmt.Sprintf("%d snapshots of %d volumes", snaps[id], volumes[id]))
		}
		if ok {
			res.Evidence++
		}
		if bucket == "" {
			continue
		}
		if _, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket),
			Key: aws.String(workflow.IncidentKey(h.srv.AccountID(), h.srv.Region(), id))}); err == nil {
			res.Records++
		} else {
			miss(id, "no incident record")
		}
	}
	sort.Strings(missing)
	res.EvidenceMissing = missing
	return nil
}
