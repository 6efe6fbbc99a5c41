// Package verify is "Verify containment", the isolation's final read-back: before an execution reports success
// it reads the instance back and checks that it is contained, whatever the steps meant to do and whatever changed
// since (a rule added to an isolation group, an ENI put back on its old groups or attached after Apply, the
// isolation profile removed). What it finds open it contains again, a bounded number of rounds; if the instance is
// still open after them the step fails with steperr.NotContained naming each open thing.
//
// Contained means, read back from EC2:
//   - every ENI attached to the instance carries exactly one group: the isolation group of its VPC (an ENI on
//     [original, isolation] is open: security groups are permissive, the union of their rules applies);
//   - every isolation group an ENI carries has no inbound and no outbound rule;
//   - the isolation profile's association is the instance's only association not disassociated, and it is
//     associated or associating (one disassociating is not attached).
package verify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2-isolation/ec2-isolation/internal/profile"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/validate"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Step is the ASL state name, as the changes and the logs name it.
const Step = "Verify containment"

// Settings of "Verify containment": the isolation group's name and connection tracking mode (secgroup), the
// isolation profile (profile), and the isolation tag (validate), read by each package's own parser.
type Settings struct {
	Groups   secgroup.Settings
	Profile  profile.Settings
	TagKey   string
	TagValue string
}

// SettingsFromEnv reads ISOLATION_GROUP_NAME, CONNECTION_TRACKING, ISOLATION_PROFILE_NAME, TAG_KEY and TAG_VALUE
// (os.Getenv in a Lambda). A missing or malformed one is a steperr.ConfigError.
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	v, err := validate.SettingsFromEnv(getenv)
	if err != nil {
		return Settings{}, err
	}
	p, err := profile.SettingsFromEnv(getenv)
	if err != nil {
		return Settings{}, err
	}
	s := Settings{Groups: v.Groups, Profile: p, TagKey: v.TagKey, TagValue: v.TagValue}
	return s, s.Check()
}

// Check reports a steperr.ConfigError for settings the parsers would refuse.
func (s Settings) Check() error {
	return cmp.Or(s.Groups.Check(), s.Profile.Check(),
		validate.Settings{TagKey: s.TagKey, TagValue: s.TagValue}.Check())
}

// DefaultRounds is how many read-backs the step makes at most: the first, and one after each of two rounds of
// containing again. A change EC2 accepted shows at the next read-back, so a second repair is only needed when
// something changed again meanwhile (or a profile association had to settle first).
const DefaultRounds = 3

// Handler is the "Verify containment" Lambda handler.
type Handler struct {
	ec2          *ec2.Client
	s            Settings
	log          *slog.Logger
	now          func() time.Time
	attach       *profile.Attach
	disassociate *profile.Disassociate
	// Rounds bounds the read-backs (DefaultRounds).
	Rounds int
	// Wait bounds the in-handler waits: a group just created becoming visible, a profile association settling
	// (secgroup.DefaultWait; tests shorten it). When it runs out, the step fails with the error the state machine
	// retries (GroupNotVisible, AssociationPending).
	Wait secgroup.Wait
	// Sleep waits d between the attempts of a bounded wait (nil: a timer). Tests pass one that advances the
	// simulator's virtual clock, so that what the handler waits for happens exactly when it waits.
	Sleep func(ctx context.Context, d time.Duration) error
}

// New returns the handler; s must have passed Check (SettingsFromEnv does it). A nil logger logs to
// slog.Default().
func New(client *ec2.Client, s Settings, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	return &Handler{
		ec2: client, s: s, log: log, now: time.Now,
		attach:       profile.NewAttach(client, s.Profile, log),
		disassociate: profile.NewDisassociate(client, s.Profile, log),
		Rounds:       DefaultRounds,
		Wait:         secgroup.DefaultWait,
	}
}

var instanceIDPattern = regexp.MustCompile(`^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$`)

// Handle reads the instance back and contains again what is open (see the package comment). A contained instance
// costs one round trip of reads and no change, so a retry or a redrive changes nothing.
func (h *Handler) Handle(ctx context.Context, in workflow.VerifyInput) (workflow.VerifyOutput, error) {
	log := h.log.With("instance", in.InstanceID, "execution", in.ExecutionName, "step", Step,
		"attempt", in.Attempt, "redriveCount", in.RedriveCount)
	if err := h.s.Check(); err != nil {
		log.Error("refused: configuration", "error", err)
		return workflow.VerifyOutput{}, err
	}
	if err := checkInput(in); err != nil {
		log.Error("invalid input", "error", err)
		return workflow.VerifyOutput{}, err
	}
	// Repairs put an ENI directly on the isolation group, in either connection tracking mode: the allow-all group
	// is for the first containment of tracked flows only (Apply); an ENI found open here is on other groups than
	// the ones Apply untracked, and opening it to all traffic for a moment would be a step back. So the groups this
	// step ensures are the isolation groups alone.
	ensure := secgroup.NewEnsure(h.ec2, secgroup.Settings{GroupName: h.s.Groups.GroupName, Mode: secgroup.ModeDirect}, log)
	ensure.Wait = h.Wait
	v := &verification{h: h, in: in, log: log, ensure: ensure, known: knownGroups(in), added: map[string]bool{}}

	var (
		rb        *readBack
		firstOpen []string
		problems  []problem
		repairErr []error
	)
	rounds := max(h.Rounds, 1)
	for round := 1; ; round++ {
		var err error
		if rb, err = v.read(ctx); err != nil {
			log.Error("read back", "error", err, "round", round, "changes", v.changes)
			return workflow.VerifyOutput{}, err
		}
		if err := rb.isolatable(in.InstanceID); err != nil {
			log.Error("instance cannot be contained", "error", err, "round", round, "changes", v.changes)
			return workflow.VerifyOutput{}, err
		}
		// An ENI attached since Validate is listed with the groups it had before anything here changes them.
		if err := v.noteAdded(ctx, rb); err != nil {
			log.Error("describe the groups of a new network interface", "error", err, "changes", v.changes)
			return workflow.VerifyOutput{}, err
		}
		problems = rb.open(h.s, in.InstanceID)
		if round == 1 {
			firstOpen = texts(problems)
		}
		if len(problems) == 0 {
			out := v.output(rb, firstOpen, round)
			log.Info("contained", "rounds", round, "open", firstOpen, "changes", len(out.Changes), "added", out.Added,
				"superseded", out.Superseded)
			return out, nil
		}
		log.Warn("not contained", "round", round, "open", texts(problems))
		if round >= rounds {
			break
		}
		repairErr = v.repair(ctx, rb, problems)
	}

	err := failure(in.InstanceID, problems, repairErr)
	log.Error("NOT contained", "error", err, "rounds", rounds, "firstOpen", firstOpen, "changes", v.changes)
	return workflow.VerifyOutput{}, err
}

// failure is the step's error when the instance is still open after the last round: an error the state machine
// retries when one of the repairs hit one (throttling, a 5xx, a group not yet visible, an association still
// changing state: a later attempt reads again and carries on), else NotContained naming what is open and why it
// could not be closed.
func failure(instanceID string, problems []problem, repairErr []error) error {
	for _, err := range repairErr {
		if retryable(err) {
			return err
		}
	}
	onlyPending := len(problems) > 0
	for _, p := range problems {
		onlyPending = onlyPending && p.pending != nil
	}
	if onlyPending {
		return problems[0].pending
	}
	open := texts(problems)
	for _, err := range repairErr {
		open = append(open, "could not contain it again: "+err.Error())
	}
	return &steperr.NotContained{InstanceID: instanceID, Open: open}
}

func retryable(err error) bool {
	var (
		th *steperr.Throttled
		tr *steperr.Transient
		nv *steperr.GroupNotVisible
		ap *steperr.AssociationPending
		pr *steperr.ProfileNotReady
	)
	return errors.As(err, &th) || errors.As(err, &tr) || errors.As(err, &nv) || errors.As(err, &ap) || errors.As(err, &pr)
}

// checkInput refuses an input the definition should never produce.
func checkInput(in workflow.VerifyInput) error {
	bad := func(format string, a ...any) error {
		return &steperr.InvalidInput{Step: Step, Reason: fmt.Sprintf(format, a...)}
	}
	switch {
	case !instanceIDPattern.MatchString(in.InstanceID):
		return bad("instanceId %q is not an instance id", in.InstanceID)
	case in.ExecutionName == "":
		return bad("executionName is empty")
	case in.Record != nil && in.Record.InstanceID != in.InstanceID:
		return bad("the record is of instance %q, not of %s", in.Record.InstanceID, in.InstanceID)
	}
	return nil
}

// knownGroups are the isolation groups the network branch used, by VPC: Ensure's (Groups), else, on the warm
// path, the ones Validate found (Record.IsolationGroups).
func knownGroups(in workflow.VerifyInput) map[string]workflow.VpcGroups {
	known := map[string]workflow.VpcGroups{}
	if in.Record != nil {
		for _, g := range in.Record.IsolationGroups {
			if g.IsolationGroupID != "" {
				known[g.VpcID] = g
			}
		}
	}
	if in.Groups != nil {
		for _, g := range in.Groups.Groups {
			if g.IsolationGroupID != "" {
				known[g.VpcID] = g
			}
		}
	}
	return known
}

// verification is one run of the step: what it knows, has recorded and has changed so far.
type verification struct {
	h      *Handler
	in     workflow.VerifyInput
	log    *slog.Logger
	ensure *secgroup.Ensure
	known  map[string]workflow.VpcGroups
	// addedList are the ENIs attached since Validate, with their groups before this step changed them; added
	// marks every such ENI considered (listed or not).
	addedList []workflow.NetworkInterface
	added     map[string]bool
	mu        sync.Mutex // guards changes (ENIs are modified concurrently)
	changes   []workflow.Change
}

func (v *verification) change(resource, action, detail string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.changes = append(v.changes, workflow.Change{At: v.h.now().UTC(), Step: Step, Resource: resource, Action: action, Detail: detail})
}

// adopt takes the changes another step's handler made on this step's behalf.
func (v *verification) adopt(changes []workflow.Change) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, c := range changes {
		c.Step = Step
		v.changes = append(v.changes, c)
	}
}

// output is the step's answer from the last read-back.
func (v *verification) output(rb *readBack, open []string, rounds int) workflow.VerifyOutput {
	out := workflow.VerifyOutput{
		Contained:         true,
		NetworkInterfaces: []workflow.VerifiedInterface{},
		Groups:            []workflow.VerifiedGroup{},
		Associations:      []workflow.ProfileAssociation{},
		Open:              open,
		Rounds:            rounds,
		Added:             v.addedList,
		NotOwned:          rb.notOwned,
	}
	for _, e := range rb.enis {
		out.NetworkInterfaces = append(out.NetworkInterfaces, workflow.VerifiedInterface{ID: e.id, VpcID: e.vpc,
			Groups: slices.Clone(e.groups), IsolationGroupID: rb.iso[e.vpc]})
	}
	for _, vpc := range rb.vpcs() {
		if sg, ok := rb.groups[rb.iso[vpc]]; ok {
			out.Groups = append(out.Groups, workflow.VerifiedGroup{VpcID: vpc, GroupID: rb.iso[vpc],
				Ingress: len(rules(sg.IpPermissions, false)), Egress: len(rules(sg.IpPermissionsEgress, true))})
		}
	}
	for _, a := range rb.assocs {
		out.Associations = append(out.Associations, workflow.ProfileAssociation{AssociationID: a.id, ProfileARN: a.arn, State: a.state})
	}
	out.Superseded = superseded(rb.tags, v.h.s.TagKey, v.h.s.TagValue)
	v.mu.Lock()
	defer v.mu.Unlock()
	slices.SortStableFunc(v.changes, func(a, b workflow.Change) int { return a.At.Compare(b.At) })
	if len(v.changes) > 0 {
		out.Changes = slices.Clone(v.changes)
	}
	return out
}

// superseded says, when the instance's isolation tag no longer carries the isolation value, what it carries now:
// a later tag change (a release) decides what happens next. Containment is verified all the same: this execution
// isolated the instance, and an unverified half-isolation helps nobody.
func superseded(tags map[string]string, key, want string) string {
	got, ok := tags[key]
	switch {
	case !ok:
		return fmt.Sprintf("the instance no longer carries the tag %s (the isolation value is %q)", key, want)
	case got != want:
		return fmt.Sprintf("the instance now carries %s=%q, not %s=%q", key, got, key, want)
	}
	return ""
}

// pause sleeps before the next attempt of a bounded wait: exponential from Wait.Base up to Wait.Max, half
// jittered so that concurrent executions do not poll in step.
func (h *Handler) pause(ctx context.Context, attempt int) error {
	d := h.Wait.Max
	if attempt < 30 {
		if b := h.Wait.Base << attempt; b > 0 && b < d {
			d = b
		}
	}
	if d > 0 {
		d = d/2 + rand.N(d/2+1)
	}
	if h.Sleep != nil {
		return h.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return &steperr.Transient{Op: "wait", Err: ctx.Err()}
	case <-t.C:
		return nil
	}
}
