package restore

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

	"github.com/ec2-isolation/ec2-isolation/internal/evidence/parts"
	"github.com/ec2-isolation/ec2-isolation/internal/profile"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// ProfileStep is the ASL state name of Profile.
const ProfileStep = "Restore instance profile"

// ProfileAPI is the part of the EC2 client Profile uses.
type ProfileAPI interface {
	DescribeIamInstanceProfileAssociations(ctx context.Context, in *ec2.DescribeIamInstanceProfileAssociationsInput, opts ...func(*ec2.Options)) (*ec2.DescribeIamInstanceProfileAssociationsOutput, error)
	AssociateIamInstanceProfile(ctx context.Context, in *ec2.AssociateIamInstanceProfileInput, opts ...func(*ec2.Options)) (*ec2.AssociateIamInstanceProfileOutput, error)
	ReplaceIamInstanceProfileAssociation(ctx context.Context, in *ec2.ReplaceIamInstanceProfileAssociationInput, opts ...func(*ec2.Options)) (*ec2.ReplaceIamInstanceProfileAssociationOutput, error)
	DisassociateIamInstanceProfile(ctx context.Context, in *ec2.DisassociateIamInstanceProfileInput, opts ...func(*ec2.Options)) (*ec2.DisassociateIamInstanceProfileOutput, error)
}

// Profile is the handler of "Restore instance profile".
type Profile struct {
	ec2      ProfileAPI
	settings profile.Settings
	log      *slog.Logger
}

// NewProfile returns the handler; the settings name the isolation profile (env ISOLATION_PROFILE_NAME, as for the
// isolation's profile steps). A nil logger logs to slog.Default().
func NewProfile(api ProfileAPI, s profile.Settings, log *slog.Logger) *Profile {
	if log == nil {
		log = slog.Default()
	}
	return &Profile{ec2: api, settings: s, log: log}
}

const (
	associating    = types.IamInstanceProfileAssociationStateAssociating
	associated     = types.IamInstanceProfileAssociationStateAssociated
	disassociating = types.IamInstanceProfileAssociationStateDisassociating
)

// Handle puts the pre-isolation profile (the record's ProfileAssociation) back:
//   - the original profile associated or associating: nothing to do;
//   - the isolation profile associated: replaced by the original in one call (no moment without a profile), or
//     removed when the instance had none;
//   - no profile: the original associated;
//   - an association changing state (the isolation profile going away): AssociationPending, for ASL to retry;
//   - another profile: someone changed it by hand since isolation; it is left alone and the step fails saying so.
func (h *Profile) Handle(ctx context.Context, in workflow.ReleaseInput) (workflow.StepChanges, error) {
	log := h.log.With("instance", in.InstanceID, "execution", in.ExecutionName, "step", ProfileStep)
	out := workflow.StepChanges{Changes: []workflow.Change{}}
	if err := h.settings.Check(); err != nil {
		log.Error("refused: configuration", "error", err)
		return out, err
	}
	if err := checkProfileInput(in); err != nil {
		log.Error("refused input", "error", err)
		return out, err
	}
	id := in.InstanceID
	original := ""
	if a := in.Incident.PreIsolation.Record.ProfileAssociation; a != nil {
		original = a.ProfileARN
	}
	as, err := profile.Associations(ctx, h.ec2, id)
	if err != nil {
		log.Error("cannot read associations", "error", err)
		return out, err
	}

	var (
		current  *types.IamInstanceProfileAssociation
		changing *types.IamInstanceProfileAssociation
	)
	for _, a := range as {
		switch a.State {
		case associated, associating:
			if original != "" && strings.EqualFold(profile.ProfileARN(a), original) {
				log.Info("pre-isolation profile already in place", "profile", original, "state", a.State)
				return out, nil
			}
		}
		switch a.State {
		case associated:
			current = &a
		case associating, disassociating:
			changing = &a
		}
	}
	switch {
	case changing != nil && (changing.State == associating || original != ""):
		// Wait for it to settle: EC2 refuses an association while another is changing (IncorrectState).
		err := &steperr.AssociationPending{InstanceID: id, AssociationID: aws.ToString(changing.AssociationId), State: string(changing.State)}
		log.Info("association changing state", "profile", profile.ProfileARN(*changing), "error", err)
		return out, err
	case current == nil && original == "":
		log.Info("no profile, as before isolation")
		return out, nil
	case current != nil && !profile.IsProfile(profile.ProfileARN(*current), h.settings.IsolationProfileName):
		err := &steperr.AWSError{Op: "restore instance profile of " + id, Err: fmt.Errorf(
			"its profile is %s, neither the isolation profile %s nor its pre-isolation profile %s: it was changed by hand since isolation; left alone",
			profile.ProfileARN(*current), h.settings.IsolationProfileName, orNone(original))}
		log.Error("foreign profile", "error", err)
		return out, err
	}

	r := change{id: id}
	switch {
	case current != nil && original != "":
		err = r.replace(ctx, h.ec2, *current, original)
	case current != nil:
		err = r.disassociate(ctx, h.ec2, *current)
	default:
		err = r.associate(ctx, h.ec2, original)
	}
	if err != nil {
		log.Error("restore instance profile", "error", err)
		return out, err
	}
	out.Changes = append(out.Changes, workflow.Change{At: r.at, Step: ProfileStep, Resource: id, Action: r.action, Detail: r.detail})
	log.Info("instance profile restored", "changes", out.Changes)
	return out, nil
}

// change is the one call Handle makes, and what it reports.
type change struct {
	id, action, detail string
	at                 time.Time
}

func (c *change) set(action, detail string) {
	c.action, c.detail, c.at = action, detail, time.Now().UTC()
}

func (c *change) replace(ctx context.Context, api ProfileAPI, cur types.IamInstanceProfileAssociation, original string) error {
	res, err := api.ReplaceIamInstanceProfileAssociation(ctx, &ec2.ReplaceIamInstanceProfileAssociationInput{
		AssociationId: cur.AssociationId, IamInstanceProfile: &types.IamInstanceProfileSpecification{Arn: aws.String(original)},
	})
	if err != nil {
		return classify("replace instance profile association "+aws.ToString(cur.AssociationId)+" of "+c.id, c.id, original, err)
	}
	c.set("ReplaceIamInstanceProfileAssociation", fmt.Sprintf("instance profile %s -> %s (association %s)",
		profile.ProfileARN(cur), original, associationID(res.IamInstanceProfileAssociation)))
	return nil
}

func (c *change) disassociate(ctx context.Context, api ProfileAPI, cur types.IamInstanceProfileAssociation) error {
	_, err := api.DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{AssociationId: cur.AssociationId})
	switch code := steperr.Code(err); {
	case err == nil:
		c.set("DisassociateIamInstanceProfile", fmt.Sprintf("instance profile %s -> none, as before isolation (association %s)",
			profile.ProfileARN(cur), aws.ToString(cur.AssociationId)))
		return nil
	case code == "InvalidAssociationID.NotFound", code == "IncorrectState":
		// Gone or going since we read it (a concurrent run): read again.
		return &steperr.AssociationPending{InstanceID: c.id, AssociationID: aws.ToString(cur.AssociationId), State: "changed since read: " + code}
	}
	return steperr.FromAWS("disassociate instance profile association "+aws.ToString(cur.AssociationId)+" of "+c.id, err)
}

func (c *change) associate(ctx context.Context, api ProfileAPI, original string) error {
	res, err := api.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{
		InstanceId: aws.String(c.id), IamInstanceProfile: &types.IamInstanceProfileSpecification{Arn: aws.String(original)},
	})
	if err != nil {
		return classify("associate instance profile "+original+" with "+c.id, c.id, original, err)
	}
	c.set("AssociateIamInstanceProfile", fmt.Sprintf("instance profile none -> %s (association %s)", original, associationID(res.IamInstanceProfileAssociation)))
	return nil
}

// classify is profile.Classify, except that EC2 refusing the original profile is not a new profile becoming
// visible (ProfileNotReady, retried) but one deleted since isolation: no retry helps.
func classify(op, instanceID, original string, err error) error {
	err = profile.Classify(op, instanceID, original, err)
	var notReady *steperr.ProfileNotReady
	if errors.As(err, &notReady) {
		return &steperr.AWSError{Op: op, Err: fmt.Errorf("EC2 refuses the pre-isolation instance profile %s (deleted since isolation?): %w", original, notReady.Err)}
	}
	return err
}

func associationID(a *types.IamInstanceProfileAssociation) string {
	if a == nil {
		return "?"
	}
	return aws.ToString(a.AssociationId)
}

func orNone(arn string) string {
	if arn == "" {
		return "(none)"
	}
	return arn
}

func checkProfileInput(in workflow.ReleaseInput) error {
	if err := parts.CheckRelease(ProfileStep, in); err != nil {
		return err
	}
	if a := in.Incident.PreIsolation.Record.ProfileAssociation; a != nil && !strings.Contains(a.ProfileARN, ":instance-profile/") {
		return &steperr.InvalidInput{Step: ProfileStep, Reason: fmt.Sprintf("the recorded profile %q is not an instance profile ARN", a.ProfileARN)}
	}
	return nil
}
