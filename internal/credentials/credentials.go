// Package credentials is "Revoke credentials" (isolation) and "Lift credential revocation" (release).
//
// Disassociating the instance profile does not end the credentials the instance already holds: they stay valid
// until they expire (hours). Revoke puts an inline policy on the role of the instance's pre-isolation profile
// that denies every action to credentials used from this instance (the condition key ec2:SourceInstanceARN,
// which IAM adds to every request signed with an instance's role credentials: AWS's documented way to revoke
// one instance's session). Other instances of the same role keep working.
//
// Lift does not delete that policy: credentials stolen before the isolation would work again. It replaces it
// (same name, one PutRolePolicy, no moment without a deny) with one that denies only the instance's credentials
// issued before the release (aws:TokenIssueTime DateLessThan the release's start), so the restored profile's
// fresh credentials work. That policy is needed until every credential issued before the release has expired:
// its statement's Sid carries that time (ReleasedUntil reads it), after which `isolation cleanup` or the
// reconciler deletes it.
//
// Both read first and change only what is missing: a second run makes no mutating call. A role outside the
// stack's revocable roles (REVOCABLE_ROLES, the same pattern the template's IAM permissions are scoped to) is
// skipped with a reason, without a call.
package credentials

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// ASL state names.
const (
	RevokeStep = "Revoke credentials"
	LiftStep   = "Lift credential revocation"
)

// PolicyPrefix starts the name of every revoking policy: ec2-isolation-revoke-<instance id>.
const PolicyPrefix = "ec2-isolation-revoke-"

// PolicyName is the inline policy that revokes the instance's credentials.
func PolicyName(instanceID string) string { return PolicyPrefix + instanceID }

// Document is the revoking policy of the instance with this ARN.
func Document(instanceARN string) string {
	// Built by hand (not json.Marshal of a map) so that the key order is the documented one.
	arn, _ := json.Marshal(instanceARN)
	return `{"Version":"2012-10-17","Statement":[{"Sid":"RevokeIsolatedInstanceCredentials","Effect":"Deny",` +
		`"Action":"*","Resource":"*","Condition":{"StringEquals":{"ec2:SourceInstanceARN":` + string(arn) + `}}}]}`
}

// KeepFor is how long after the release the released policy is still needed: the longest a temporary credential
// can live. IAM: temporary security credentials are "valid for the specified duration, from 900 seconds (15
// minutes) up to a maximum of 129,600 seconds (36 hours)"
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_temp_control-access_disable-perms.html), and
// "IAM role credentials provided by Amazon EC2 instances assigned to the role are not subject to the specified
// maximum session duration" (IAM UpdateRole, MaxSessionDuration): no shorter bound is documented for them.
const KeepFor = 36 * time.Hour

// releasedSid starts the Sid of a released policy's statement; the rest is the time after which the policy can be
// deleted, as 20060102T150405Z (a Sid holds only letters and digits).
const releasedSid = "DenyCredentialsIssuedBeforeReleaseUntil"

const sidTime = "20060102T150405Z"

// ReleasedDocument is the policy Lift leaves: the instance's credentials issued before releasedAt stay denied,
// until releasedAt+KeepFor (rounded up to the second).
func ReleasedDocument(instanceARN string, releasedAt time.Time) string {
	releasedAt = releasedAt.UTC().Truncate(time.Millisecond)
	until := releasedAt.Add(KeepFor + time.Second - 1).Truncate(time.Second)
	arn, _ := json.Marshal(instanceARN)
	// Milliseconds, as $$.Execution.StartTime has them: IAM dates are ISO 8601 (fractions allowed), and a
	// credential issued in the second before the release must still be denied.
	return `{"Version":"2012-10-17","Statement":[{"Sid":"` + releasedSid + until.Format(sidTime) + `","Effect":"Deny",` +
		`"Action":"*","Resource":"*","Condition":{"StringEquals":{"ec2:SourceInstanceARN":` + string(arn) + `},` +
		`"DateLessThan":{"aws:TokenIssueTime":"` + releasedAt.Format("2006-01-02T15:04:05.000Z") + `"}}}]}`
}

// ReleasedUntil reads a policy document (as put, or as IAM returns it: URL-encoded) of a role: ok is true when it
// is a released policy (Lift's), which can be deleted after until; deniedBefore is its aws:TokenIssueTime bound.
// A revoking policy (an instance still isolated) is never ok: never delete it.
func ReleasedUntil(doc string) (until, deniedBefore time.Time, ok bool) {
	if dec, err := url.PathUnescape(doc); err == nil {
		doc = dec
	}
	var p struct {
		Statement []struct {
			Sid       string
			Condition struct {
				DateLessThan map[string]string
			}
		}
	}
	if json.Unmarshal([]byte(doc), &p) != nil || len(p.Statement) != 1 {
		return until, deniedBefore, false
	}
	st := p.Statement[0]
	rest, found := strings.CutPrefix(st.Sid, releasedSid)
	if !found {
		return until, deniedBefore, false
	}
	until, err := time.Parse(sidTime, rest)
	if err != nil {
		return until, deniedBefore, false
	}
	deniedBefore, err = time.Parse(time.RFC3339Nano, st.Condition.DateLessThan["aws:TokenIssueTime"])
	if err != nil {
		return until, deniedBefore, false
	}
	return until, deniedBefore, true
}

// API is the part of the IAM client the steps use.
type API interface {
	GetInstanceProfile(ctx context.Context, in *iam.GetInstanceProfileInput, opts ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
	GetRolePolicy(ctx context.Context, in *iam.GetRolePolicyInput, opts ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	PutRolePolicy(ctx context.Context, in *iam.PutRolePolicyInput, opts ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
}

// Handler serves "Revoke credentials" (Revoke) and "Lift credential revocation" (Lift).
type Handler struct {
	api API
	s   Settings
	log *slog.Logger
	now func() time.Time
}

// New returns the handler. s must have passed Check (SettingsFromEnv does it). A nil logger logs to
// slog.Default().
func New(api API, s Settings, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	return &Handler{api: api, s: s, log: log, now: time.Now}
}

var (
	instanceIDPattern  = regexp.MustCompile(`^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$`)
	instanceARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:ec2:[a-z0-9-]+:[0-9]{12}:instance/(i-[0-9a-f]+)$`)
	// profileARNPattern: arn:PARTITION:iam::ACCOUNT:instance-profile/[PATH/]NAME.
	profileARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:instance-profile/(?:[\x21-\x7E]*/)?([\w+=,.@-]{1,128})$`)
)

// Revoke puts the revoking policy on the role of the instance's pre-isolation profile.
func (h *Handler) Revoke(ctx context.Context, in workflow.RevokeInput) (workflow.RevokeOutput, error) {
	return h.run(ctx, in, RevokeStep)
}

// Lift replaces the revoking policy on the role of the instance's pre-isolation profile with the released one.
func (h *Handler) Lift(ctx context.Context, in workflow.RevokeInput) (workflow.RevokeOutput, error) {
	return h.run(ctx, in, LiftStep)
}

func (h *Handler) run(ctx context.Context, in workflow.RevokeInput, step string) (workflow.RevokeOutput, error) {
	log := h.log.With("instance", in.InstanceID, "execution", in.ExecutionName, "step", step)
	out := workflow.RevokeOutput{Roles: []workflow.RevokedRole{}}
	profile, err := checkInput(in, step)
	if err != nil {
		log.Error("refused input", "error", err)
		return out, err
	}
	if step == RevokeStep && !h.s.Revoke {
		out.Skipped = append(out.Skipped, "credential revocation is turned off (REVOKE_CREDENTIALS=false)")
		log.Info("skipped: revocation turned off")
		return out, nil
	}
	if profile == "" {
		out.Skipped = append(out.Skipped, "the instance had no instance profile: no credentials to "+verb(step))
		log.Info("skipped: no instance profile")
		return out, nil
	}

	res, err := h.api.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(profile)})
	switch {
	case isNoSuchEntity(err):
		reason := fmt.Sprintf("instance profile %s no longer exists: its role is unknown", in.ProfileARN)
		if step == LiftStep {
			reason += fmt.Sprintf("; the inline policy %s on that role (if the role still exists) keeps denying every credential of %s: delete it by hand", PolicyName(in.InstanceID), in.InstanceID)
		}
		out.Skipped = append(out.Skipped, reason)
		log.Warn("skipped: instance profile gone", "profile", in.ProfileARN)
		return out, nil
	case err != nil:
		err = steperr.FromAWS("get instance profile "+profile, err)
		log.Error("cannot read the instance profile", "error", err)
		return out, err
	}
	var roles []types.Role
	if res.InstanceProfile != nil {
		roles = res.InstanceProfile.Roles
	}
	if len(roles) == 0 {
		out.Skipped = append(out.Skipped, fmt.Sprintf("instance profile %s has no role: no credentials to %s", in.ProfileARN, verb(step)))
		log.Info("skipped: profile without role")
		return out, nil
	}
	for _, r := range roles {
		name, path := aws.ToString(r.RoleName), aws.ToString(r.Path)
		if h.s.StackRole(path) {
			out.Skipped = append(out.Skipped, fmt.Sprintf("role %s is one of the stack's own roles (path %s): not %s",
				RoleResource(path, name), h.s.StackRolePath, pastVerb(step)))
			log.Warn("skipped: the stack's own role", "role", RoleResource(path, name))
			continue
		}
		if !h.s.Matches(path, name) {
			out.Skipped = append(out.Skipped, fmt.Sprintf("role %s is outside the stack's revocable roles (%s=%s): not %s",
				RoleResource(path, name), EnvRevocableRoles, h.s.RevocableRoles, pastVerb(step)))
			log.Warn("skipped: role not revocable", "role", RoleResource(path, name), "pattern", h.s.RevocableRoles)
			continue
		}
		var (
			rr     workflow.RevokedRole
			change *workflow.Change
		)
		if step == RevokeStep {
			rr, change, err = h.put(ctx, in, name)
		} else {
			rr, change, err = h.lift(ctx, in, name)
		}
		if steperr.Code(err) == "LimitExceeded" && step == LiftStep {
			// The released policy is longer than the revoking one it replaces. The revoking one stays: safe, but
			// the restored profile's credentials are denied too.
			out.Skipped = append(out.Skipped, fmt.Sprintf("role %s: its inline policies reached IAM's size limit (10,240 characters): "+
				"the inline policy %s still denies EVERY credential of %s, fresh ones too; free room on the role and run the release again",
				name, PolicyName(in.InstanceID), in.InstanceID))
			log.Error("not lifted: the role's inline policies are full", "role", name, "error", err)
			continue
		}
		if steperr.Code(err) == "LimitExceeded" {
			// IAM caps a role's inline policies at 10,240 characters in all: about 40 instances of one role
			// revoked at once. The instance is contained without it (network, profile); failing the isolation
			// would not free room, so say it loudly instead.
			out.Skipped = append(out.Skipped, fmt.Sprintf("role %s: its inline policies reached IAM's size limit (10,240 characters; "+
				"other isolated instances of this role hold one each): the credentials already taken from %s are NOT revoked; "+
				"free room on the role (release the instances of closed incidents) and tag this instance again, or revoke the role's sessions",
				name, in.InstanceID))
			log.Error("not revoked: the role's inline policies are full", "role", name, "error", err)
			continue
		}
		if err != nil {
			log.Error("failed", "role", name, "error", err)
			return out, err
		}
		out.Roles = append(out.Roles, rr)
		if change != nil {
			out.Changes = append(out.Changes, *change)
		}
		log.Info("done", "role", name, "policy", rr.PolicyName, "changed", rr.Changed)
	}
	return out, nil
}

// put makes sure the role carries the revoking policy, exactly.
func (h *Handler) put(ctx context.Context, in workflow.RevokeInput, role string) (workflow.RevokedRole, *workflow.Change, error) {
	name, want := PolicyName(in.InstanceID), Document(in.InstanceARN)
	rr := workflow.RevokedRole{RoleName: role, PolicyName: name}
	cur, err := h.api.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name)})
	switch {
	case err == nil:
		if same, err := sameDocument(aws.ToString(cur.PolicyDocument), want); err == nil && same {
			return rr, nil, nil
		}
	case !isNoSuchEntity(err):
		return rr, nil, steperr.FromAWS(fmt.Sprintf("get inline policy %s of role %s", name, role), err)
	}
	if _, err := h.api.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
		RoleName: aws.String(role), PolicyName: aws.String(name), PolicyDocument: aws.String(want),
	}); err != nil {
		return rr, nil, steperr.FromAWS(fmt.Sprintf("put inline policy %s on role %s", name, role), err)
	}
	rr.Changed = true
	return rr, &workflow.Change{
		At: h.now().UTC(), Step: RevokeStep, Resource: role, Action: "PutRolePolicy",
		Detail: fmt.Sprintf("inline policy %s denies every action to credentials used from %s", name, in.InstanceARN),
	}, nil
}

// lift replaces the revoking policy with the released one, if it is still the revoking one.
func (h *Handler) lift(ctx context.Context, in workflow.RevokeInput, role string) (workflow.RevokedRole, *workflow.Change, error) {
	name := PolicyName(in.InstanceID)
	rr := workflow.RevokedRole{RoleName: role, PolicyName: name}
	cur, err := h.api.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name)})
	switch {
	case isNoSuchEntity(err):
		return rr, nil, nil // never put (revocation off), or deleted after it expired
	case err != nil:
		return rr, nil, steperr.FromAWS(fmt.Sprintf("get inline policy %s of role %s", name, role), err)
	}
	if until, before, ok := ReleasedUntil(aws.ToString(cur.PolicyDocument)); ok {
		rr.Until, rr.DeniedBefore = &until, &before // lifted by an earlier run: its time stands
		return rr, nil, nil
	}
	releasedAt := h.now()
	if in.ReleaseStartedAt != nil {
		releasedAt = *in.ReleaseStartedAt
	}
	doc := ReleasedDocument(in.InstanceARN, releasedAt)
	until, before, _ := ReleasedUntil(doc)
	if _, err := h.api.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
		RoleName: aws.String(role), PolicyName: aws.String(name), PolicyDocument: aws.String(doc),
	}); err != nil {
		return rr, nil, steperr.FromAWS(fmt.Sprintf("replace inline policy %s on role %s", name, role), err)
	}
	rr.Changed, rr.Until, rr.DeniedBefore = true, &until, &before
	return rr, &workflow.Change{
		At: h.now().UTC(), Step: LiftStep, Resource: role, Action: "PutRolePolicy",
		// The times are in the output's roles (deniedBefore, until), not in this text.
		Detail: fmt.Sprintf("inline policy %s now denies only credentials used from %s issued before the release started "+
			"(taken before it); it can go once they have all expired, %s after the release", name, in.InstanceARN, KeepFor),
	}, nil
}

// checkInput returns the name of the pre-isolation profile ("" when there was none).
func checkInput(in workflow.RevokeInput, step string) (string, error) {
	bad := func(format string, a ...any) (string, error) {
		return "", &steperr.InvalidInput{Step: step, Reason: fmt.Sprintf(format, a...)}
	}
	switch m := instanceARNPattern.FindStringSubmatch(in.InstanceARN); {
	case in.ExecutionName == "":
		return bad("executionName is empty")
	case !instanceIDPattern.MatchString(in.InstanceID):
		return bad("instanceId %q is not an instance id", truncate(in.InstanceID, 100))
	case m == nil:
		return bad("instanceArn %q is not an EC2 instance ARN", truncate(in.InstanceARN, 200))
	case m[1] != in.InstanceID:
		// The policy would deny another instance's credentials.
		return bad("instanceArn %s is not the ARN of instance %s", in.InstanceARN, in.InstanceID)
	case in.ProfileARN == "":
		return "", nil
	}
	m := profileARNPattern.FindStringSubmatch(in.ProfileARN)
	if m == nil {
		return bad("profileArn %q is not an instance profile ARN", truncate(in.ProfileARN, 200))
	}
	return m[1], nil
}

// sameDocument compares a policy document IAM returned (URL-encoded, RFC 3986) with the wanted one, as JSON
// values: IAM may reformat what it stores.
func sameDocument(got, want string) (bool, error) {
	// PathUnescape: a "+" in a document stays a "+" (IAM encodes it as %2B).
	if dec, err := url.PathUnescape(got); err == nil {
		got = dec
	}
	var a, b any
	if err := json.Unmarshal([]byte(got), &a); err != nil {
		return false, err
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		return false, err
	}
	return reflect.DeepEqual(a, b), nil
}

func isNoSuchEntity(err error) bool {
	if err == nil {
		return false
	}
	var nse *types.NoSuchEntityException
	return steperr.Code(err) == "NoSuchEntity" || errors.As(err, &nse)
}

func verb(step string) string {
	if step == RevokeStep {
		return "revoke"
	}
	return "lift"
}

func pastVerb(step string) string {
	if step == RevokeStep {
		return "revoked"
	}
	return "lifted"
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
