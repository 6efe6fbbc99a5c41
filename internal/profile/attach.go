package profile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// AttachAPI is the part of the EC2 client "Attach isolation profile" uses.
type AttachAPI interface {
	DescribeIamInstanceProfileAssociations(ctx context.Context, in *ec2.DescribeIamInstanceProfileAssociationsInput, opts ...func(*ec2.Options)) (*ec2.DescribeIamInstanceProfileAssociationsOutput, error)
	AssociateIamInstanceProfile(ctx context.Context, in *ec2.AssociateIamInstanceProfileInput, opts ...func(*ec2.Options)) (*ec2.AssociateIamInstanceProfileOutput, error)
	ReplaceIamInstanceProfileAssociation(ctx context.Context, in *ec2.ReplaceIamInstanceProfileAssociationInput, opts ...func(*ec2.Options)) (*ec2.ReplaceIamInstanceProfileAssociationOutput, error)
}

// Attach is the "Attach isolation profile" Lambda handler.
type Attach struct {
	api      AttachAPI
	settings Settings
	log      *slog.Logger
}

// NewAttach returns the handler. A nil logger logs to slog.Default().
func NewAttach(api AttachAPI, s Settings, log *slog.Logger) *Attach {
	if log == nil {
		log = slog.Default()
	}
	return &Attach{api: api, settings: s, log: log}
}

// Handle makes the isolation profile the instance's profile:
//   - already associated or associating: nothing to do (Changed false);
//   - another profile associated: replace it in one call (no moment without a profile is needed, and none with
//     the old role);
//   - an association changing state: AssociationPending, for ASL to retry once it settles;
//   - no association: associate.
//
// EC2 refusing the profile name (not yet visible to EC2, or missing) is ProfileNotReady.
func (h *Attach) Handle(ctx context.Context, in workflow.InstanceInput) (workflow.AttachOutput, error) {
	const step = "Attach isolation profile"
	log := h.log.With("instance", in.InstanceID, "execution", in.ExecutionName, "step", step)
	if err := h.settings.Check(); err != nil {
		log.Error("refused: configuration", "error", err)
		return workflow.AttachOutput{}, err
	}
	if err := checkInput(step, in); err != nil {
		log.Error("refused input", "error", err)
		return workflow.AttachOutput{}, err
	}
	as, err := Associations(ctx, h.api, in.InstanceID)
	if err != nil {
		log.Error("cannot read associations", "error", err)
		return workflow.AttachOutput{}, err
	}

	name := h.settings.IsolationProfileName
	var other *types.IamInstanceProfileAssociation
	for _, a := range as {
		if IsProfile(ProfileARN(a), name) && (a.State == associated || a.State == associating) {
			log.Info("isolation profile already attached", "association", aws.ToString(a.AssociationId), "state", a.State)
			return workflow.AttachOutput{AssociationID: aws.ToString(a.AssociationId), ProfileARN: ProfileARN(a)}, nil
		}
	}
	for _, a := range as {
		switch a.State {
		case associating, disassociating:
			log.Info("association changing state", "association", aws.ToString(a.AssociationId), "profile", ProfileARN(a), "state", a.State)
			return workflow.AttachOutput{}, pending(in.InstanceID, a)
		case associated:
			other = &a
		}
	}

	res, err := h.change(ctx, in.InstanceID, other)
	if err != nil {
		log.Warn("attach isolation profile failed", "replacing", other != nil, "error", err)
		return workflow.AttachOutput{}, err
	}

	out := workflow.AttachOutput{Changed: true}
	if res != nil {
		out.AssociationID, out.ProfileARN = aws.ToString(res.AssociationId), ProfileARN(*res)
	}
	change := workflow.Change{At: time.Now().UTC(), Step: step, Resource: in.InstanceID}
	if other != nil {
		log.Info("replaced instance profile", "association", out.AssociationID, "profile", out.ProfileARN,
			"previous", ProfileARN(*other))
		change.Action = "ReplaceIamInstanceProfileAssociation"
		change.Detail = fmt.Sprintf("instance profile %s -> %s (association %s)", ProfileARN(*other), profileOrName(out.ProfileARN, name), out.AssociationID)
	} else {
		log.Info("associated isolation profile", "association", out.AssociationID, "profile", out.ProfileARN)
		change.Action = "AssociateIamInstanceProfile"
		change.Detail = fmt.Sprintf("instance profile none -> %s (association %s)", profileOrName(out.ProfileARN, name), out.AssociationID)
	}
	out.Changes = []workflow.Change{change}
	return out, nil
}

// change replaces the association other, or associates the isolation profile when other is nil.
func (h *Attach) change(ctx context.Context, instanceID string, other *types.IamInstanceProfileAssociation) (*types.IamInstanceProfileAssociation, error) {
	spec := &types.IamInstanceProfileSpecification{Name: aws.String(h.settings.IsolationProfileName)}
	if other != nil {
		out, err := h.api.ReplaceIamInstanceProfileAssociation(ctx, &ec2.ReplaceIamInstanceProfileAssociationInput{
			AssociationId: other.AssociationId, IamInstanceProfile: spec,
		})
		if err != nil {
			op := "replace instance profile association " + aws.ToString(other.AssociationId) + " of " + instanceID
			return nil, Classify(op, instanceID, h.settings.IsolationProfileName, err)
		}
		return out.IamInstanceProfileAssociation, nil
	}
	out, err := h.api.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{
		InstanceId: aws.String(instanceID), IamInstanceProfile: spec,
	})
	if err != nil {
		return nil, Classify("associate instance profile with "+instanceID, instanceID, h.settings.IsolationProfileName, err)
	}
	return out.IamInstanceProfileAssociation, nil
}

// profileOrName is the profile's ARN, or its name when EC2's answer did not carry the ARN.
func profileOrName(arn, name string) string {
	if arn != "" {
		return arn
	}
	return name
}

// Classify maps the errors of the association calls (associate, replace) to what the state machine does about
// them; profileName is the profile the call asked for.
func Classify(op, instanceID, profileName string, err error) error {
	switch code := steperr.Code(err); {
	case code == "IncorrectState", code == "InvalidAssociationID.NotFound":
		// An association appeared, changed state or vanished since we read them (a concurrent run, the
		// disassociation settling): read again later.
		return &steperr.AssociationPending{InstanceID: instanceID, State: "changed since read: " + code}
	case code == "InvalidInstanceID.NotFound", code == "InvalidInstanceID.Malformed":
		return &steperr.InstanceNotFound{InstanceID: instanceID}
	case code == "IncorrectInstanceState":
		return &steperr.InstanceNotIsolatable{InstanceID: instanceID, Reason: awsMessage(err)}
	case code == "InvalidParameterValue" && mentionsProfile(err):
		// "Value (NAME) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name":
		// a new profile is not visible to EC2 for a few seconds.
		return &steperr.ProfileNotReady{Profile: profileName, Err: err}
	}
	return steperr.FromAWS(op, err)
}

// mentionsProfile looks at the service's message only: the SDK's wrapping names the operation, which
// contains "IamInstanceProfile" whatever went wrong.
func mentionsProfile(err error) bool {
	m := strings.ToLower(awsMessage(err))
	return strings.Contains(m, "iaminstanceprofile") || strings.Contains(m, "iam instance profile")
}

// awsMessage is the service's error message, without the SDK's wrapping.
func awsMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return err.Error()
}
