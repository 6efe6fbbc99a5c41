package profile

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// DisassociateAPI is the part of the EC2 client "Disassociate profile" uses.
type DisassociateAPI interface {
	DescribeIamInstanceProfileAssociations(ctx context.Context, in *ec2.DescribeIamInstanceProfileAssociationsInput, opts ...func(*ec2.Options)) (*ec2.DescribeIamInstanceProfileAssociationsOutput, error)
	DisassociateIamInstanceProfile(ctx context.Context, in *ec2.DisassociateIamInstanceProfileInput, opts ...func(*ec2.Options)) (*ec2.DisassociateIamInstanceProfileOutput, error)
}

// Disassociate is the "Disassociate profile" Lambda handler.
type Disassociate struct {
	api      DisassociateAPI
	settings Settings
	log      *slog.Logger
}

// NewDisassociate returns the handler. A nil logger logs to slog.Default().
func NewDisassociate(api DisassociateAPI, s Settings, log *slog.Logger) *Disassociate {
	if log == nil {
		log = slog.Default()
	}
	return &Disassociate{api: api, settings: s, log: log}
}

// Handle removes every association of the instance with a profile other than the isolation profile.
// An association still associating is AssociationPending (it cannot be removed yet; ASL retries); one already
// disassociating needs nothing more.
func (h *Disassociate) Handle(ctx context.Context, in workflow.InstanceInput) (workflow.DisassociateOutput, error) {
	const step = "Disassociate profile"
	log := h.log.With("instance", in.InstanceID, "execution", in.ExecutionName, "step", step)
	out := workflow.DisassociateOutput{Disassociated: []workflow.ProfileAssociation{}}
	if err := h.settings.Check(); err != nil {
		log.Error("refused: configuration", "error", err)
		return out, err
	}
	if err := checkInput(step, in); err != nil {
		log.Error("refused input", "error", err)
		return out, err
	}
	as, err := h.associations(ctx, in)
	if err != nil {
		log.Error("cannot read associations", "error", err)
		return out, err
	}

	var todo []types.IamInstanceProfileAssociation
	for _, a := range as {
		if IsProfile(ProfileARN(a), h.settings.IsolationProfileName) {
			continue
		}
		switch a.State {
		case associating:
			log.Info("association still associating", "association", aws.ToString(a.AssociationId), "profile", ProfileARN(a))
			return out, pending(in.InstanceID, a)
		case associated:
			todo = append(todo, a)
		}
	}
	if len(todo) == 0 {
		log.Info("no profile to disassociate", "associations", len(as))
		return out, nil
	}

	// One association per instance is the rule, but a list is what EC2 returns: remove them all at once.
	results := make([]workflow.ProfileAssociation, len(todo))
	changed := make([]time.Time, len(todo))
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, a := range todo {
		wg.Go(func() { results[i], changed[i], errs[i] = h.disassociate(ctx, in.InstanceID, a) })
	}
	wg.Wait()
	for i, a := range todo {
		if errs[i] != nil {
			log.Error("disassociate failed", "association", aws.ToString(a.AssociationId), "profile", ProfileARN(a), "error", errs[i])
			return out, errs[i]
		}
		log.Info("disassociated profile", "association", results[i].AssociationID, "profile", results[i].ProfileARN, "state", results[i].State)
		out.Disassociated = append(out.Disassociated, results[i])
		if !changed[i].IsZero() {
			out.Changes = append(out.Changes, workflow.Change{At: changed[i], Step: step, Resource: in.InstanceID,
				Action: "DisassociateIamInstanceProfile",
				Detail: fmt.Sprintf("removed instance profile %s (association %s)", results[i].ProfileARN, results[i].AssociationID)})
		}
	}
	return out, nil
}

// disassociate removes the association; the time is when this call removed it, zero when it was already gone.
func (h *Disassociate) disassociate(ctx context.Context, instanceID string, a types.IamInstanceProfileAssociation) (workflow.ProfileAssociation, time.Time, error) {
	id := aws.ToString(a.AssociationId)
	res, err := h.api.DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{AssociationId: aws.String(id)})
	// An error without an AWS code (no answer: a timeout, a closed connection) has Code "" too.
	switch code := steperr.Code(err); {
	case err == nil:
		if res.IamInstanceProfileAssociation != nil {
			got := toWorkflow(*res.IamInstanceProfileAssociation)
			if got.ProfileARN == "" {
				got.ProfileARN = ProfileARN(a)
			}
			if got.AssociationID == "" {
				got.AssociationID = id
			}
			return got, time.Now().UTC(), nil
		}
		return workflow.ProfileAssociation{AssociationID: id, ProfileARN: ProfileARN(a), State: string(disassociating)}, time.Now().UTC(), nil
	case code == "InvalidAssociationID.NotFound":
		// Gone between our read and our call (a concurrent run): the goal is reached.
		return workflow.ProfileAssociation{AssociationID: id, ProfileARN: ProfileARN(a), State: string(disassociated)}, time.Time{}, nil
	case code == "IncorrectState":
		return workflow.ProfileAssociation{}, time.Time{}, &steperr.AssociationPending{InstanceID: instanceID, AssociationID: id, State: "changing"}
	}
	return workflow.ProfileAssociation{}, time.Time{}, steperr.FromAWS("disassociate instance profile association "+id+" of "+instanceID, err)
}

// associations are the instance's associations: on a first run with Validate's record, the one it saw moments
// before (issue 16: a storm's containment shares DescribeIamInstanceProfileAssociations' bucket with Validate,
// Attach and Verify, so one read fewer per isolation); on a retry or a redrive, or without a record, EC2's. A
// stale record is safe: an association removed since is InvalidAssociationID.NotFound (the goal reached), one
// added since is found by Attach, which cannot associate over it, and by Verify's read-back.
func (h *Disassociate) associations(ctx context.Context, in workflow.InstanceInput) ([]types.IamInstanceProfileAssociation, error) {
	if in.Record == nil || in.Rerun.Again() {
		return Associations(ctx, h.api, in.InstanceID)
	}
	pa := in.Record.ProfileAssociation
	if pa == nil {
		return nil, nil
	}
	return []types.IamInstanceProfileAssociation{{
		AssociationId:      aws.String(pa.AssociationID),
		InstanceId:         aws.String(in.InstanceID),
		IamInstanceProfile: &types.IamInstanceProfile{Arn: aws.String(pa.ProfileARN)},
		State:              types.IamInstanceProfileAssociationState(pa.State),
	}}, nil
}
