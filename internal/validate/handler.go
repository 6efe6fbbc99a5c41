// Package validate is the "Validate and record" step: it checks that the execution's event is a tag change
// asking to isolate an EC2 instance this stack can act on, and records the instance's pre-isolation state
// (what the later steps act on and what a release restores). It changes nothing.
package validate

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// API is the part of the EC2 client the step uses. Options gives the client's region: an event from another
// region names an instance this client cannot reach.
type API interface {
	Options() ec2.Options
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeIamInstanceProfileAssociations(ctx context.Context, in *ec2.DescribeIamInstanceProfileAssociationsInput, opts ...func(*ec2.Options)) (*ec2.DescribeIamInstanceProfileAssociationsOutput, error)
	DescribeInstanceAttribute(ctx context.Context, in *ec2.DescribeInstanceAttributeInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error)
	DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, opts ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
}

// Handler is the "Validate and record" Lambda handler.
type Handler struct {
	api      API
	settings Settings
	log      *slog.Logger
	now      func() time.Time
}

// New returns the handler. A nil logger logs to slog.Default().
func New(api API, s Settings, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	return &Handler{api: api, settings: s, log: log, now: time.Now}
}

// Handle validates in.Event and returns the record of the instance it names, with the isolation groups already
// usable in its VPCs (Record.IsolationGroups, GroupsReady): looked up in the same round trip as the instance.
// The instance's current tag decides: when it no longer carries the isolation value (removed, or changed to the
// release value since the event), the event is superseded and refused. Errors are steperr types:
// InvalidEvent (before any AWS call), ConfigError, InstanceNotFound, InstanceNotIsolatable, Superseded, or a
// FromAWS classification.
func (h *Handler) Handle(ctx context.Context, in workflow.ValidateInput) (workflow.Record, error) {
	rec, err := h.Observe(ctx, in)
	if err != nil {
		return workflow.Record{}, err
	}
	if got, ok := rec.Tags[h.settings.TagKey]; !ok || got != h.settings.TagValue {
		err := &steperr.Superseded{InstanceID: rec.InstanceID, TagKey: h.settings.TagKey, Want: h.settings.TagValue, Got: got}
		h.log.Warn("refused: superseded", "execution", in.ExecutionName, "step", "Validate and record",
			"instance", rec.InstanceID, "error", err)
		return workflow.Record{}, err
	}
	return rec, nil
}

// Observe is Handle without the check of the instance's current tag: the record of what the event names, as
// EC2 describes it now. `isolation run` prints it as the plan before it sets the tag.
func (h *Handler) Observe(ctx context.Context, in workflow.ValidateInput) (workflow.Record, error) {
	log := h.log.With("execution", in.ExecutionName, "step", "Validate and record")
	if err := cmp.Or(h.settings.Check(), h.settings.Groups.Check()); err != nil {
		log.Error("refused: configuration", "error", err)
		return workflow.Record{}, err
	}
	region := h.api.Options().Region
	if region == "" {
		err := &steperr.ConfigError{Reason: "no AWS region configured (AWS_REGION)"}
		log.Error("refused: configuration", "error", err)
		return workflow.Record{}, err
	}
	t, err := ParseEvent(in.Event, h.settings, region)
	if err != nil {
		log.Warn("refused event", "error", err, "resources", in.Event.Resources)
		return workflow.Record{}, err
	}
	log = log.With("instance", t.InstanceID)

	// The observation is as of when it was read: the earliest genuine one is an incident's pre-isolation state.
	readAt := h.now().UTC()
	st, err := describe(ctx, h.api, t.InstanceID, h.settings.Groups.Names())
	if err != nil {
		log.Warn("refused instance", "error", err)
		return workflow.Record{}, err
	}
	if st.Owner != "" && st.Owner != t.Account {
		// EC2 describes only this account's instances: the event is about another account's instance that
		// happens to share the id, or was forged. Never isolate the local one for it.
		err := &steperr.InvalidEvent{Reason: fmt.Sprintf("account mismatch: instance %s belongs to account %s, not to the event's account %s (the stack acts in its own account only)", t.InstanceID, st.Owner, t.Account)}
		log.Warn("refused event", "error", err)
		return workflow.Record{}, err
	}
	rec, err := buildRecord(t, st)
	if err != nil {
		log.Warn("refused instance", "error", err)
		return workflow.Record{}, err
	}
	if rec.Description, err = json.Marshal(st.Instance); err != nil {
		return workflow.Record{}, &steperr.AWSError{Op: "encode the description of " + t.InstanceID, Err: err}
	}
	rec.Reason = "tag " + h.settings.TagKey + "=" + h.settings.TagValue
	rec.RecordedAt = readAt
	rec.Reconcile = in.Event.Reconcile
	rec.IsolationGroups, rec.GroupsReady = h.settings.Groups.Ready(rec.VpcIDs, st.Groups)
	rec.ManagedGroups = managedIDs(st.Managed)
	rec.Artifacts = artifacts(rec, h.settings.ProfileName)
	if len(rec.Artifacts) > 0 {
		log.Warn("the instance already shows isolation artifacts: this observation is not its pre-isolation state", "artifacts", rec.Artifacts)
	}
	log.Info("recorded instance", "state", rec.State, "vpcs", rec.VpcIDs,
		"interfaces", len(rec.NetworkInterfaces), "volumes", len(rec.Volumes),
		"profile", rec.ProfileAssociation != nil, "isolationGroups", rec.IsolationGroups, "groupsReady", rec.GroupsReady)
	return rec, nil
}
