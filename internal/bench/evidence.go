package bench

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ec2-isolation/ec2-isolation/internal/snapshot"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// readBackWorkers read the storm's instances back at once.
const readBackWorkers = 4

// readBack is what the read-back found complete for one instance, and what it found missing.
type readBack struct {
	evidence, snapshots, record bool
	missing                     []string
}

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
	// One instance's reads: its two attributes and its record (the rest was read above by page).
	check := func(id string) (found readBack, err error) {
		term, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id),
			Attribute: ec2types.InstanceAttributeNameDisableApiTermination})
		if err != nil {
			return found, fmt.Errorf("read back %s: %w", id, err)
		}
		found.evidence = true
		if term.DisableApiTermination == nil || !aws.ToBool(term.DisableApiTermination.Value) {
			found.evidence = false
			found.missing = append(found.missing, id+": termination protection off")
		}
		shut, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id),
			Attribute: ec2types.InstanceAttributeNameInstanceInitiatedShutdownBehavior})
		if err != nil {
			return found, fmt.Errorf("read back %s: %w", id, err)
		}
		if shut.InstanceInitiatedShutdownBehavior == nil || aws.ToString(shut.InstanceInitiatedShutdownBehavior.Value) != "stop" {
			found.evidence = false
			found.missing = append(found.missing, id+": shutdown behaviour not stop")
		}
		if !kept[id] {
			found.evidence = false
			found.missing = append(found.missing, id+": a volume deleted on termination")
		}
		if found.snapshots = snaps[id] >= volumes[id]; !found.snapshots {
			found.missing = append(found.missing, fmt.Sprintf("%s: %d snapshots of %d volumes", id, snaps[id], volumes[id]))
		}
		if bucket == "" {
			return found, nil
		}
		if _, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket),
			Key: aws.String(workflow.IncidentKey(h.srv.AccountID(), h.srv.Region(), id))}); err == nil {
			found.record = true
		} else {
			found.missing = append(found.missing, id+": no incident record")
		}
		return found, nil
	}
	// A few readers at once: the simulator serves in process, so this is CPU, not waiting.
	found := make([]readBack, len(ids))
	errs := make([]error, len(ids))
	next := make(chan int, len(ids))
	for k := range ids {
		next <- k
	}
	close(next)
	var wg sync.WaitGroup
	for range readBackWorkers {
		wg.Go(func() {
			for k := range next {
				found[k], errs[k] = check(ids[k])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var missing []string
	for _, f := range found {
		if f.evidence {
			res.Evidence++
		}
		if f.snapshots {
			res.Snapshots++
		}
		if f.record {
			res.Records++
		}
		for _, m := range f.missing {
			if len(missing) < 5 {
				missing = append(missing, m)
			}
		}
	}
	sort.Strings(missing)
	res.EvidenceMissing = missing
	return nil
}
