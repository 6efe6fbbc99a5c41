package incident

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/validate"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Environment variables of read-incident-record besides EnvBucket.
const (
	EnvTagKey             = "TAG_KEY"
	EnvReleaseTagValue    = "RELEASE_TAG_VALUE"
	EnvIsolationGroupName = "ISOLATION_GROUP_NAME"
)

const stateRead = "Read incident record"

// The isolation groups' markers, as internal/secgroup creates them (not imported: this function needs nothing
// else of it).
const (
	tagManaged    = "ec2-isolation:managed"
	untrackSuffix = "-untrack"
)

// ReaderSettings of read-incident-record.
type ReaderSettings struct {
	Bucket string
	// Tag is the release tag: TagKey set to RELEASE_TAG_VALUE.
	Tag validate.Settings
	// IsolationGroupName is the stack's isolation group name: an instance without a record that carries it is
	// isolated with its record lost (RecordMissing), not never isolated (NotIsolated).
	IsolationGroupName string
}

// ReaderSettingsFromEnv reads the settings (os.Getenv in a Lambda).
func ReaderSettingsFromEnv(getenv func(string) string) (ReaderSettings, error) {
	s := ReaderSettings{
		Bucket:             getenv(EnvBucket),
		Tag:                validate.Settings{TagKey: getenv(EnvTagKey), TagValue: getenv(EnvReleaseTagValue)},
		IsolationGroupName: getenv(EnvIsolationGroupName),
	}
	return s, s.Check()
}

// Check reports a steperr.ConfigError for a missing or impossible setting.
func (s ReaderSettings) Check() error {
	if s.Bucket == "" {
		return &steperr.ConfigError{Reason: EnvBucket + " is not set"}
	}
	if s.IsolationGroupName == "" {
		return &steperr.ConfigError{Reason: EnvIsolationGroupName + " is not set"}
	}
	if err := s.Tag.Check(); err != nil {
		// validate names TAG_VALUE; here it is the release value.
		if s.Tag.TagValue == "" {
			return &steperr.ConfigError{Reason: EnvReleaseTagValue + " is not set"}
		}
		return err
	}
	return nil
}

// ReaderEC2API is the part of the EC2 client the reader uses (Options gives the region, as in validate).
type ReaderEC2API interface {
	Options() ec2.Options
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, opts ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
}

// Reader is "Read incident record": it checks the release event and returns the instance's open incident.
// It makes no mutating call on any path.
type Reader struct {
	s3  S3API
	ec2 ReaderEC2API
	s   ReaderSettings
	log *slog.Logger
}

// NewReader returns the handler. s must have passed Check. A nil logger logs to slog.Default().
func NewReader(s3 S3API, ec2 ReaderEC2API, s ReaderSettings, log *slog.Logger) *Reader {
	if log == nil {
		log = slog.Default()
	}
	return &Reader{s3: s3, ec2: ec2, s: s, log: log}
}

// Handle returns the release's input: the instance and its open incident. Errors: InvalidEvent, ConfigError,
// InstanceNotFound (unknown or terminated), NotIsolated (never isolated, or already released), RecordMissing
// (isolated by the stack's group but no readable record, or a record without the pre-isolation state), or a
// FromAWS classification.
func (h *Reader) Handle(ctx context.Context, in workflow.ValidateInput) (workflow.ReleaseInput, error) {
	log := h.log.With("execution", in.ExecutionName, "step", stateRead)
	fail := func(err error) (workflow.ReleaseInput, error) {
		log.Warn("refused release", "error", err)
		return workflow.ReleaseInput{}, err
	}
	if err := h.s.Check(); err != nil {
		return fail(err)
	}
	region := h.ec2.Options().Region
	if region == "" {
		return fail(&steperr.ConfigError{Reason: "no AWS region configured (AWS_REGION)"})
	}
	t, err := validate.ParseEvent(in.Event, h.s.Tag, region)
	if err != nil {
		return fail(err)
	}
	log = log.With("instance", t.InstanceID)
	key := workflow.IncidentKey(t.Account, t.Region, t.InstanceID)
	st := store{s3: h.s3, bucket: h.s.Bucket}

	var (
		wg      sync.WaitGroup
		inst    *types.Instance
		instErr error
		rec     loaded
		recErr  error
	)
	wg.Go(func() { inst, instErr = h.instance(ctx, t.InstanceID) })
	wg.Go(func() { rec, recErr = st.load(ctx, key) })
	wg.Wait()
	if instErr != nil {
		return fail(instErr)
	}
	// The current tag decides: a release whose tag the instance no longer carries (isolated again since) changes
	// nothing.
	if got, ok := tagValue(inst, h.s.Tag.TagKey); !ok || got != h.s.Tag.TagValue {
		return fail(&steperr.Superseded{InstanceID: t.InstanceID, TagKey: h.s.Tag.TagKey, Want: h.s.Tag.TagValue, Got: got})
	}
	if recErr != nil {
		return fail(storeError(recErr, h.s.Bucket, key))
	}
	if rec.file == nil {
		groups, err := h.isolationGroups(ctx, inst)
		if err != nil {
			return fail(err)
		}
		if len(groups) > 0 {
			return fail(&steperr.RecordMissing{Bucket: h.s.Bucket, Key: key, Reason: fmt.Sprintf(
				"no incident record, but instance %s carries the isolation group %v: its pre-isolation state is unknown; restore it by hand",
				t.InstanceID, groups)})
		}
		return fail(&steperr.NotIsolated{InstanceID: t.InstanceID, Reason: "this stack never isolated it (no incident record)"})
	}
	f := rec.file
	if f.InstanceID != t.InstanceID {
		return fail(&steperr.RecordMissing{Bucket: h.s.Bucket, Key: key, Reason: fmt.Sprintf("the record is of instance %q", truncate(f.InstanceID, 40))})
	}
	inc := releasable(f, in.ExecutionName)
	if inc == nil {
		if len(f.Incidents) == 0 {
			return fail(&steperr.NotIsolated{InstanceID: t.InstanceID, Reason: "its incident record holds no incident"})
		}
		last := f.Incidents[len(f.Incidents)-1]
		return fail(&steperr.NotIsolated{InstanceID: t.InstanceID, Reason: "already released at " + last.ReleasedAt.UTC().Format(time.RFC3339)})
	}
	if e := running(inc); e != nil {
		// Restoring now would race the isolation (and its record of the pre-isolation state): the state machine
		// retries this error until the isolation has recorded its outcome.
		log.Info("an isolation of the instance is still running; the release waits", "isolation", e.ExecutionName)
		return workflow.ReleaseInput{}, &steperr.IsolationInProgress{InstanceID: t.InstanceID, Execution: e.ExecutionName}
	}
	if inc.PreIsolation.Missing != "" || !genuine(inc.PreIsolation.Record) {
		why := inc.PreIsolation.Missing
		if why == "" {
			why = "the instance was found already isolated"
		}
		return fail(&steperr.RecordMissing{Bucket: h.s.Bucket, Key: key, Reason: fmt.Sprintf(
			"the incident opened at %s holds no pre-isolation state: %s; restore it by hand (the incident record and the isolation executions' histories hold what is known)",
			inc.OpenedAt.UTC().Format(time.RFC3339), why)})
	}
	out := workflow.ReleaseInput{
		InstanceID: t.InstanceID, InstanceARN: t.ARN, ExecutionName: in.ExecutionName,
		Incident: workflow.IncidentRef{
			Bucket: h.s.Bucket, Key: key, VersionID: rec.version, OpenedAt: inc.OpenedAt, PreIsolation: inc.PreIsolation,
			Isolations: isolationNames(inc),
		},
	}
	log.Info("incident to release", "key", key, "version", rec.version, "openedAt", inc.OpenedAt)
	return out, nil
}

// running is the incident's latest isolation execution when it has not recorded its outcome yet, else nil.
func running(inc *workflow.Incident) *workflow.ExecutionEntry {
	for i := len(inc.Executions) - 1; i >= 0; i-- {
		if e := &inc.Executions[i]; e.Workflow == workflow.WorkflowIsolation {
			if e.Outcome == "" {
				return e
			}
			return nil
		}
	}
	return nil
}

// isolationNames lists the incident's isolation executions.
func isolationNames(inc *workflow.Incident) []string {
	var names []string
	for _, e := range inc.Executions {
		if e.Workflow == workflow.WorkflowIsolation {
			names = append(names, e.ExecutionName)
		}
	}
	return names
}

// tagValue is the value of the instance's tag key, and whether it has the tag.
func tagValue(inst *types.Instance, key string) (string, bool) {
	for _, t := range inst.Tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value), true
		}
	}
	return "", false
}

// releasable is the open incident, or the incident this release execution already recorded (a run of the same
// execution after "Record release" closed it); nil when there is neither.
func releasable(f *workflow.IncidentFile, execution string) *workflow.Incident {
	if inc := openIncident(f); inc != nil {
		return inc
	}
	if n := len(f.Incidents); n > 0 && execution != "" && slices.ContainsFunc(f.Incidents[n-1].Executions, func(e workflow.ExecutionEntry) bool {
		return e.ExecutionName == execution && e.Workflow == workflow.WorkflowRelease
	}) {
		return &f.Incidents[n-1]
	}
	return nil
}

// instance describes the instance; unknown or terminated is InstanceNotFound.
func (h *Reader) instance(ctx context.Context, id string) (*types.Instance, error) {
	i, err := describeInstance(ctx, h.ec2, id)
	if err != nil {
		return nil, err
	}
	if i.State != nil && i.State.Name == types.InstanceStateNameTerminated {
		return nil, &steperr.InstanceNotFound{InstanceID: id}
	}
	return i, nil
}

// isolationGroups lists the groups on the instance's ENIs that have the isolation group's name (or its
// allow-all companion's) and the stack's managed tag.
func (h *Reader) isolationGroups(ctx context.Context, inst *types.Instance) ([]string, error) {
	var named []string
	for _, n := range inst.NetworkInterfaces {
		for _, g := range n.Groups {
			name := aws.ToString(g.GroupName)
			base, untrack := h.s.IsolationGroupName, h.s.IsolationGroupName+untrackSuffix
			// A VPC where a foreign group holds the name has ours under the derived name.
			if name == base || name == untrack || name == secgroup.DerivedName(base) || name == secgroup.DerivedName(untrack) {
				named = append(named, aws.ToString(g.GroupId))
			}
		}
	}
	slices.Sort(named)
	named = slices.Compact(named)
	if len(named) == 0 {
		return nil, nil
	}
	out, err := h.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: named})
	if err != nil {
		if steperr.Code(err) == "InvalidGroup.NotFound" {
			return nil, nil
		}
		return nil, steperr.FromAWS(fmt.Sprintf("describe security groups %v", named), err)
	}
	var managed []string
	for _, g := range out.SecurityGroups {
		if slices.ContainsFunc(g.Tags, func(t types.Tag) bool {
			return aws.ToString(t.Key) == tagManaged && aws.ToString(t.Value) == "true"
		}) {
			managed = append(managed, aws.ToString(g.GroupId))
		}
	}
	return managed, nil
}

// instanceDescriber is what describeInstance calls.
type instanceDescriber interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

// describeInstance describes one instance; an unknown one is InstanceNotFound.
func describeInstance(ctx context.Context, api instanceDescriber, id string) (*types.Instance, error) {
	out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	switch code := steperr.Code(err); {
	case err == nil:
	case code == "InvalidInstanceID.NotFound", code == "InvalidInstanceID.Malformed":
		return nil, &steperr.InstanceNotFound{InstanceID: id}
	default:
		return nil, steperr.FromAWS("describe instance "+id, err)
	}
	for _, res := range out.Reservations {
		for _, i := range res.Instances {
			if aws.ToString(i.InstanceId) == id {
				return &i, nil
			}
		}
	}
	return nil, &steperr.InstanceNotFound{InstanceID: id}
}
