// Package status is `isolation status`: every instance carrying the isolation tag key, its declared state (the
// tag's value), whether it is in it (the read-back of "Verify containment", verify.Fleet, changing nothing) and
// what is open if not, its incident (opened when, executions and outcomes), whether the credential revocation is
// in force, its snapshot set. The reconciler makes the same check on a schedule.
package status

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/credentials"
	"github.com/ec2-isolation/ec2-isolation/internal/incident"
	"github.com/ec2-isolation/ec2-isolation/internal/verify"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Settings say what the stack declares: the tag and its two values, the isolation group and profile (Verify),
// the incident bucket, and where.
type Settings struct {
	Verify          verify.Settings
	ReleaseValue    string
	Bucket          string
	Account, Region string
}

// Report is the status of every tagged instance (or of the one asked for).
type Report struct {
	Account   string     `json:"account"`
	Region    string     `json:"region"`
	Instances []Instance `json:"instances"`
	// InState counts the instances in their declared state; NotInState the others.
	InState    int `json:"inState"`
	NotInState int `json:"notInState"`
}

// OK: every instance is in its declared state.
func (r Report) OK() bool { return r.NotInState == 0 }

// Instance is one instance's status.
type Instance struct {
	ID    string `json:"instanceId"`
	State string `json:"state"`
	// Tag is the tag's value ("" when the instance does not carry the key); Declared is "isolated", "released",
	// or "" (no tag, or a value that is neither: not in any declared state).
	Tag      string `json:"tag"`
	Declared string `json:"declared"`
	InState  bool   `json:"inState"`
	// Contained is the read-back's verdict; Open what keeps it from being contained; Isolated: an isolation
	// artifact remains (an ENI on an isolation group, the isolation profile).
	Contained bool     `json:"contained"`
	Isolated  bool     `json:"isolated"`
	Open      []string `json:"open,omitempty"`
	// Why says what is wrong when not InState.
	Why        string    `json:"why,omitempty"`
	Incident   *Incident `json:"incident,omitempty"`
	Revocation string    `json:"revocation"`
	Snapshots  []string  `json:"snapshots,omitempty"`
}

// Incident is the instance's latest incident, from its record.
type Incident struct {
	OpenedAt   time.Time   `json:"openedAt"`
	ReleasedAt *time.Time  `json:"releasedAt,omitempty"`
	Executions []Execution `json:"executions"`
}

// Execution is one execution the incident recorded.
type Execution struct {
	Name      string    `json:"name"`
	Workflow  string    `json:"workflow"`
	StartedAt time.Time `json:"startedAt"`
	// Outcome is SUCCEEDED, FAILED, or "running" until the execution recorded its outcome.
	Outcome string `json:"outcome"`
}

// Read builds the report. only, when set, restricts it to that instance (reported even without the tag).
func Read(ctx context.Context, c *ec2.Client, s3c incident.S3API, s Settings, only string) (Report, error) {
	rep := Report{Account: s.Account, Region: s.Region, Instances: []Instance{}}
	in := &ec2.DescribeInstancesInput{}
	if only != "" {
		in.InstanceIds = []string{only}
	} else {
		in.MaxResults = aws.Int32(1000)
		in.Filters = []types.Filter{{Name: aws.String("tag-key"), Values: []string{s.Verify.TagKey}}}
	}
	var instances []types.Instance
	p := ec2.NewDescribeInstancesPaginator(c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return rep, fmt.Errorf("describe instances: %w", err)
		}
		for _, r := range page.Reservations {
			instances = append(instances, r.Instances...)
		}
	}
	if only != "" && len(instances) == 0 {
		return rep, fmt.Errorf("instance %s not found", only)
	}
	slices.SortFunc(instances, func(a, b types.Instance) int {
		return strings.Compare(aws.ToString(a.InstanceId), aws.ToString(b.InstanceId))
	})
	fleet, err := verify.ReadFleet(ctx, c, s.Verify)
	if err != nil {
		return rep, err
	}
	for _, inst := range instances {
		st, err := s.instance(ctx, s3c, fleet, inst)
		if err != nil {
			return rep, err
		}
		if st.InState {
			rep.InState++
		} else {
			rep.NotInState++
		}
		rep.Instances = append(rep.Instances, st)
	}
	return rep, nil
}

func (s Settings) instance(ctx context.Context, s3c incident.S3API, fleet *verify.Fleet, inst types.Instance) (Instance, error) {
	v := fleet.Check(inst)
	st := Instance{ID: v.InstanceID, State: v.State, Contained: v.Contained(), Isolated: v.Isolated, Open: v.Open, Revocation: "none"}
	tagged := false
	for _, t := range inst.Tags {
		if aws.ToString(t.Key) == s.Verify.TagKey {
			st.Tag, tagged = aws.ToString(t.Value), true
		}
	}
	switch {
	case v.Gone:
		st.InState, st.Why = true, "terminated: nothing left to contain"
	case !tagged:
		st.InState, st.Why = true, "not tagged: nothing declared"
	case st.Tag == s.Verify.TagValue:
		st.Declared = "isolated"
		st.InState = v.Contained()
		if !st.InState {
			st.Why = "tagged " + s.Verify.TagKey + "=" + st.Tag + " but not contained: " + strings.Join(v.Open, "; ")
		}
	case st.Tag == s.ReleaseValue:
		st.Declared = "released"
		st.InState = !v.Isolated
		if !st.InState {
			st.Why = "tagged " + s.Verify.TagKey + "=" + st.Tag + " but isolation artifacts remain (the release did not run, or failed)"
		}
	default:
		st.Why = fmt.Sprintf("%s=%q is neither the isolation value %q nor the release value %q", s.Verify.TagKey, st.Tag,
			s.Verify.TagValue, s.ReleaseValue)
	}
	if s.Bucket == "" {
		return st, nil
	}
	f, err := incident.Load(ctx, s3c, s.Bucket, workflow.IncidentKey(s.Account, s.Region, st.ID))
	if err != nil {
		return st, fmt.Errorf("incident record of %s: %w", st.ID, err)
	}
	if f == nil || len(f.Incidents) == 0 {
		return st, nil
	}
	inc := f.Incidents[len(f.Incidents)-1]
	st.Incident = &Incident{OpenedAt: inc.OpenedAt, ReleasedAt: inc.ReleasedAt, Executions: []Execution{}}
	for _, e := range inc.Executions {
		out := e.Outcome
		if out == "" {
			out = "running"
		}
		st.Incident.Executions = append(st.Incident.Executions, Execution{Name: e.ExecutionName, Workflow: e.Workflow,
			StartedAt: e.StartedAt, Outcome: out})
	}
	for _, sn := range inc.Snapshots {
		st.Snapshots = append(st.Snapshots, sn.SnapshotID+" of "+sn.VolumeID)
	}
	slices.Sort(st.Snapshots)
	st.Revocation = revocation(inc.Changes)
	return st, nil
}

// revocation says, from the incident's changes, whether the revoking policy is in force: put by "Revoke
// credentials" and not lifted since.
func revocation(changes []workflow.Change) string {
	out := "none"
	for _, c := range changes {
		switch c.Step {
		case credentials.RevokeStep:
			out = fmt.Sprintf("in force on role %s since %s", c.Resource, c.At.UTC().Format(time.RFC3339))
		case credentials.LiftStep:
			out = fmt.Sprintf("lifted from role %s at %s", c.Resource, c.At.UTC().Format(time.RFC3339))
		}
	}
	return out
}
