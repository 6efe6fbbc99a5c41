// Package snapshot is the "Snapshot volumes" step: one crash-consistent snapshot set of every EBS volume of
// the instance (CreateSnapshots), tagged with the instance, the execution and the reason, so the evidence
// survives whatever happens to the instance. It runs at most one CreateSnapshots per execution.
package snapshot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Tags on every snapshot of the set. The execution tag is what makes the step idempotent.
const (
	TagInstanceID = "ec2-isolation:instance-id"
	TagExecution  = "ec2-isolation:execution"
	TagReason     = "ec2-isolation:reason"
)

const step = "Snapshot volumes"

// API is the part of the EC2 client the step uses.
type API interface {
	DescribeSnapshots(ctx context.Context, in *ec2.DescribeSnapshotsInput, opts ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	CreateSnapshots(ctx context.Context, in *ec2.CreateSnapshotsInput, opts ...func(*ec2.Options)) (*ec2.CreateSnapshotsOutput, error)
}

// Handler is the "Snapshot volumes" Lambda handler. It has no settings.
type Handler struct {
	api API
	log *slog.Logger
}

// New returns the handler. A nil logger logs to slog.Default().
func New(api API, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	return &Handler{api: api, log: log}
}

var instanceIDPattern = regexp.MustCompile(`^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$`)

// Handle returns the execution's snapshot set of the instance, creating it if no earlier run did.
func (h *Handler) Handle(ctx context.Context, in workflow.InstanceInput) (workflow.SnapshotOutput, error) {
	log := h.log.With("instance", in.InstanceID, "execution", in.ExecutionName, "step", step)
	out := workflow.SnapshotOutput{Snapshots: []workflow.Snapshot{}}
	if err := checkInput(in); err != nil {
		log.Error("refused input", "error", err)
		return out, err
	}

	existing, err := h.existing(ctx, in)
	if err != nil {
		log.Error("cannot look for an earlier snapshot set", "error", err)
		return out, err
	}
	if len(existing) > 0 {
		// The earlier run's output may never have reached the state machine (a lost answer): its changes are
		// reported again, with EC2's start time, so that the incident record, which dedupes them, has them.
		out.Snapshots, out.Changes = summarise(in.InstanceID, existing)
		log.Info("snapshot set already exists", "snapshots", snapshotIDs(out.Snapshots))
		return out, nil
	}

	// CreateSnapshots refuses an instance without EBS volumes; such an instance has nothing to keep. The volumes
	// "Validate and record" read spare a DescribeInstances (a terminated instance is then refused by
	// CreateSnapshots itself: IncorrectInstanceState).
	volumes, err := 0, error(nil)
	if in.Record != nil {
		volumes = len(in.Record.Volumes)
	}
	if volumes == 0 {
		volumes, err = h.ebsVolumes(ctx, in.InstanceID)
	}
	if err != nil {
		log.Error("cannot describe instance", "error", err)
		return out, err
	}
	if volumes == 0 {
		log.Info("instance has no EBS volume: nothing to snapshot")
		return out, nil
	}

	created, err := h.create(ctx, in)
	if err != nil {
		log.Error("create snapshots failed", "error", err)
		return out, err
	}
	out.Snapshots, out.Changes = summarise(in.InstanceID, created)
	out.Created = true
	log.Info("created snapshot set", "snapshots", snapshotIDs(out.Snapshots))
	return out, nil
}

func checkInput(in workflow.InstanceInput) error {
	switch {
	case in.ExecutionName == "":
		return &steperr.InvalidInput{Step: step, Reason: "executionName is empty"}
	case in.InstanceID == "":
		return &steperr.InvalidInput{Step: step, Reason: "instanceId is empty"}
	case !instanceIDPattern.MatchString(in.InstanceID):
		return &steperr.InvalidInput{Step: step, Reason: fmt.Sprintf("instanceId %q is not an instance id", in.InstanceID)}
	case utf8.RuneCountInString(in.ExecutionName) > 80 || strings.ContainsAny(in.ExecutionName, "*?"):
		// The name finds an earlier run's set (a tag filter): a name cut to fit a tag would never match it, and
		// the filter's wildcards would match other executions' sets. Step Functions names have neither.
		return &steperr.InvalidInput{Step: step, Reason: fmt.Sprintf("executionName %q is not a Step Functions execution name (at most 80 characters, no * or ?)", truncate(in.ExecutionName, 100))}
	}
	return nil
}

// existing finds the snapshots an earlier run of this execution created for the instance.
func (h *Handler) existing(ctx context.Context, in workflow.InstanceInput) ([]types.Snapshot, error) {
	p := ec2.NewDescribeSnapshotsPaginator(h.api, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters: []types.Filter{
			{Name: aws.String("tag:" + TagExecution), Values: []string{in.ExecutionName}},
			{Name: aws.String("tag:" + TagInstanceID), Values: []string{in.InstanceID}},
		},
	})
	var snaps []types.Snapshot
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, steperr.FromAWS("describe snapshots of execution "+in.ExecutionName, err)
		}
		snaps = append(snaps, out.Snapshots...)
	}
	return snaps, nil
}

// ebsVolumes counts the instance's EBS volumes; a terminated instance is InstanceNotIsolatable.
func (h *Handler) ebsVolumes(ctx context.Context, id string) (int, error) {
	out, err := h.api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	// An error without an AWS code (no answer: a timeout, a closed connection) has Code "" too.
	switch code := steperr.Code(err); {
	case err == nil:
	case code == "InvalidInstanceID.NotFound", code == "InvalidInstanceID.Malformed":
		return 0, &steperr.InstanceNotFound{InstanceID: id}
	default:
		return 0, steperr.FromAWS("describe instance "+id, err)
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if aws.ToString(i.InstanceId) != id {
				continue
			}
			if i.State != nil && (i.State.Name == types.InstanceStateNameTerminated || i.State.Name == types.InstanceStateNameShuttingDown) {
				// Its volumes are gone or detached: an empty set would read as "nothing to keep".
				return 0, &steperr.InstanceNotIsolatable{InstanceID: id, Reason: "it is " + string(i.State.Name) + ", its volumes cannot be snapshotted"}
			}
			n := 0
			for _, b := range i.BlockDeviceMappings {
				if b.Ebs != nil {
					n++
				}
			}
			return n, nil
		}
	}
	return 0, &steperr.InstanceNotFound{InstanceID: id}
}

func (h *Handler) create(ctx context.Context, in workflow.InstanceInput) ([]types.Snapshot, error) {
	reason := in.Reason
	if reason == "" {
		reason = "unspecified"
	}
	res, err := h.api.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{
		InstanceSpecification: &types.InstanceSpecification{InstanceId: aws.String(in.InstanceID)},
		CopyTagsFromSource:    types.CopyTagsFromSourceVolume,
		Description:           aws.String(truncate(fmt.Sprintf("ec2-isolation of %s, execution %s", in.InstanceID, in.ExecutionName), 255)),
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeSnapshot,
			Tags: []types.Tag{
				{Key: aws.String(TagInstanceID), Value: aws.String(in.InstanceID)},
				{Key: aws.String(TagExecution), Value: aws.String(truncate(in.ExecutionName, 256))},
				{Key: aws.String(TagReason), Value: aws.String(truncate(reason, 256))},
				{Key: aws.String("Name"), Value: aws.String("isolation " + in.InstanceID)},
			},
		}},
	}, answeredRetriesOnly)
	switch code := steperr.Code(err); {
	case err == nil:
	case code == "InvalidInstanceID.NotFound", code == "InvalidInstanceID.Malformed":
		return nil, &steperr.InstanceNotFound{InstanceID: in.InstanceID}
	case code == "IncorrectInstanceState":
		// Terminated since containment: its volumes are gone or detached, nothing of the instance to snapshot.
		return nil, &steperr.InstanceNotIsolatable{InstanceID: in.InstanceID, Reason: "EC2 cannot snapshot its volumes in its state"}
	default:
		return nil, steperr.FromAWS("create snapshots of "+in.InstanceID, err)
	}
	snaps := make([]types.Snapshot, 0, len(res.Snapshots))
	for _, s := range res.Snapshots {
		snaps = append(snaps, types.Snapshot{SnapshotId: s.SnapshotId, VolumeId: s.VolumeId, State: s.State, StartTime: s.StartTime})
	}
	return snaps, nil
}

// answeredRetriesOnly keeps the SDK from retrying a CreateSnapshots attempt that got no answer (a timeout, a
// closed connection): EC2 may have created the set, and CreateSnapshots has no client token, so a retry would
// create a second one. Such an error ends the call; the step fails Transient and the state machine runs it again,
// and the new run finds the set by its execution tag. Attempts EC2 answered with an error (throttling, 5xx)
// created nothing and are retried as usual.
func answeredRetriesOnly(o *ec2.Options) {
	if o.Retryer != nil {
		o.Retryer = answeredOnly{o.Retryer}
	}
}

type answeredOnly struct{ aws.Retryer }

func (r answeredOnly) IsErrorRetryable(err error) bool {
	var answered smithy.APIError
	return errors.As(err, &answered) && r.Retryer.IsErrorRetryable(err)
}

// summarise returns the set, sorted, and its CreateSnapshots changes: one per snapshot, at the time EC2 started
// it (the same in every run, so the incident record, which dedupes changes, keeps one of each).
func summarise(instanceID string, found []types.Snapshot) ([]workflow.Snapshot, []workflow.Change) {
	slices.SortFunc(found, func(a, b types.Snapshot) int {
		return cmp.Or(cmp.Compare(aws.ToString(a.VolumeId), aws.ToString(b.VolumeId)), cmp.Compare(aws.ToString(a.SnapshotId), aws.ToString(b.SnapshotId)))
	})
	snaps := make([]workflow.Snapshot, 0, len(found))
	changes := make([]workflow.Change, 0, len(found))
	for _, s := range found {
		snaps = append(snaps, workflow.Snapshot{
			SnapshotID: aws.ToString(s.SnapshotId), VolumeID: aws.ToString(s.VolumeId), State: string(s.State),
		})
		changes = append(changes, workflow.Change{
			At: aws.ToTime(s.StartTime).UTC(), Step: step, Resource: aws.ToString(s.SnapshotId), Action: "CreateSnapshots",
			Detail: fmt.Sprintf("snapshot of %s (%s)", aws.ToString(s.VolumeId), instanceID),
		})
	}
	return snaps, changes
}

func snapshotIDs(s []workflow.Snapshot) []string {
	ids := make([]string, len(s))
	for i, x := range s {
		ids[i] = x.SnapshotID
	}
	return ids
}

// truncate cuts s to n runes (EC2 limits tag values and descriptions in characters).
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
