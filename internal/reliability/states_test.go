package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// hostileState is an account that changes under a running execution, or a dependency that misbehaves.
type hostileState struct {
	name string
	// shape picks the fleet instance (fleet's i%4 shapes).
	shape int
	mode  secgroup.Mode
	// setup changes the scenario before the server starts.
	setup func(sc *sim.Scenario)
	// at names the moment the account changes: the first event of this type for this state.
	at      asl.EventType
	atState string
	change  func(a *sim.Account, fi fleetInstance, ev asl.Event) error
	// The outcome: isolated, or failed at one of failedAt with one of errs.
	isolated bool
	failedAt []string
	errs     []string
	// fix, when set, clears the cause; then one redrive must end isolated.
	fix func(a *sim.Account)
	// leftOut are ENIs that are no longer the instance's when it ends (not checked).
	leftOut func(fi fleetInstance) []string
}

// TestHostileStates changes the account while executions run (an instance terminated, an ENI detached, the
// isolation group deleted, the isolation profile missing, calls that never answer). Each execution ends
// isolated, or failed with a named error and exactly one failure notification; where the cause can be fixed,
// one redrive then isolates.
func TestHostileStates(t *testing.T) {
	t.Parallel()
	cases := []hostileState{
		{name: "instance terminated after validation", shape: 2, at: asl.ParallelStateEntered, atState: "Contain",
			change:   func(a *sim.Account, fi fleetInstance, _ asl.Event) error { return a.TerminateInstance(fi.ID) },
			failedAt: []string{"Apply isolation security group", "Attach isolation profile"}, errs: []string{"InstanceNotIsolatable"}},
		{name: "instance terminated before the snapshot", shape: 2, at: asl.TaskScheduled, atState: "Snapshot volumes",
			change:   func(a *sim.Account, fi fleetInstance, _ asl.Event) error { return a.TerminateInstance(fi.ID) },
			failedAt: []string{"Snapshot volumes"}, errs: []string{"InstanceNotIsolatable"}},
		{name: "instance stopped after validation", shape: 1, at: asl.ParallelStateEntered, atState: "Contain",
			change:   func(a *sim.Account, fi fleetInstance, _ asl.Event) error { return a.SetInstanceState(fi.ID, "stopped") },
			isolated: true},
		{name: "ENI detached before the groups are applied", shape: 2, at: asl.TaskScheduled, atState: "Apply isolation security group",
			change: func(a *sim.Account, fi fleetInstance, _ asl.Event) error {
				return a.DetachNetworkInterface(eniOf(fi, 1))
			},
			isolated: true, leftOut: func(fi fleetInstance) []string { return []string{eniOf(fi, 1)} }},
		{name: "isolation group deleted after its creation", shape: 2, at: asl.TaskScheduled, atState: "Apply isolation security group",
			change: func(a *sim.Account, _ fleetInstance, ev asl.Event) error {
				var in struct {
					Ensured struct {
						Groups []struct {
							IsolationGroupID string `json:"isolationGroupId"`
						} `json:"groups"`
					} `json:"ensured"`
				}
				if err := json.Unmarshal(ev.Input, &in); err != nil || len(in.Ensured.Groups) == 0 {
					return fmt.Errorf("apply input %s: %v", ev.Input, err)
				}
				return a.DeleteSecurityGroup(in.Ensured.Groups[0].IsolationGroupID)
			},
			// A missing group leads back to Ensure (issue 12, case 4).
			isolated: true},
		{name: "isolation profile missing", shape: 1,
			setup: func(sc *sim.Scenario) {
				sc.InstanceProfiles = slices.DeleteFunc(sc.InstanceProfiles, func(p sim.InstanceProfile) bool { return p.Name == profileName })
			},
			failedAt: []string{"Attach isolation profile"}, errs: []string{"ProfileNotReady"},
			fix: func(a *sim.Account) { a.AddInstanceProfile(profileName, profileName, 0) }},
		{name: "profile association stuck disassociating", shape: 1, at: asl.TaskScheduled, atState: "Attach isolation profile",
			change: func(a *sim.Account, fi fleetInstance, _ asl.Event) error {
				a.Behaviour.AssociationSettle = time.Hour
				return a.SetAssociationState(fi.ID, "disassociating")
			},
			failedAt: []string{"Attach isolation profile"}, errs: []string{"AssociationPending"},
			fix: func(a *sim.Account) { a.Behaviour.AssociationSettle = 0 }},
		{name: "every ENI change answered by a closed connection", shape: 2, mode: secgroup.ModeUntrackFirst,
			setup: func(sc *sim.Scenario) {
				sc.Faults.Errors = []sim.ErrorFault{{Action: "ModifyNetworkInterfaceAttribute", Timeout: time.Millisecond}}
			},
			failedAt: []string{"Apply isolation security group"}, errs: []string{"Transient"},
			fix: func(a *sim.Account) { a.Faults = sim.Faults{} }},
		{name: "notifications hang past the notify task's timeout", shape: 1,
			setup: func(sc *sim.Scenario) {
				// Four Publish calls in a row hang (each until the client's 20 s timeout): Notify success times
				// out as a task; so does the first run of Notify failure.
				sc.Faults.Errors = []sim.ErrorFault{{Action: "Publish", Timeout: time.Hour, FirstCalls: 8}}
			},
			failedAt: []string{"Notify success"}, errs: []string{"States.Timeout"},
			fix: func(a *sim.Account) { a.Faults = sim.Faults{} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				sc, instances := fleet(4)
				fi := instances[tc.shape]
				if tc.setup != nil {
					tc.setup(&sc)
				}
				o := virtualOptions()
				var (
					e       *env
					once    sync.Once
					changed = make(chan error, 1)
				)
				o.onEvent = func(ev asl.Event) {
					if tc.change == nil || ev.Type != tc.at || ev.State != tc.atState {
						return
					}
					once.Do(func() {
						var err error
						e.srv.Update(func(a *sim.Account) { err = tc.change(a, fi, ev) })
						changed <- err
					})
				}
				e = newEnv(t, sc, o)
				mode := tc.mode
				if mode == "" {
					mode = secgroup.ModeDirect
				}
				r := e.runners[mode]
				ctx := context.Background()
				ex := r.Start(ctx, "hostile-state", event(fi.ID))
				if tc.change != nil {
					select {
					case err := <-changed:
						if err != nil {
							t.Fatalf("changing the account mid-run: %v", err)
						}
					default:
						t.Fatalf("the execution never reached %s of %q", tc.at, tc.atState)
					}
				}
				for _, u := range unnamedErrors(ex) {
					t.Errorf("a task failed with an unnamed error: %s", u)
				}
				notes := e.notified()[fi.ID]
				if notes == nil {
					notes = &notifications{}
				}
				if tc.isolated {
					if ex.Status != asl.StatusSucceeded {
						t.Fatalf("execution %s %s: %s", ex.Status, ex.Error, causeMessage(ex.Cause))
					}
					if notes.Succeeded != 1 || len(notes.Failed) != 0 {
						t.Errorf("notifications %+v, want one success", *notes)
					}
					checkIsolated(ctx, t, e, fi, ex.Name, tc.leftOut)
					return
				}

				if ex.Status != asl.StatusFailed || ex.Error != "IsolationFailed" {
					t.Fatalf("execution %s %s (%s), want FAILED IsolationFailed at Notify failure; %s", ex.Status, ex.Error, causeMessage(ex.Cause), notifyRuns(ex))
				}
				failed := failedStates(ex)
				if len(failed) == 0 || !slices.Contains(tc.failedAt, failed[0]) {
					t.Errorf("failed states %v, want one of %v first", failed, tc.failedAt)
				}
				for _, s := range failed {
					if r := stateRun(ex, s); !slices.Contains(tc.errs, r.Error) {
						t.Errorf("%s failed with %s (%s), want one of %v", s, r.Error, causeMessage(r.Cause), tc.errs)
					}
				}
				if len(notes.Failed) != 1 || len(failed) == 0 || notes.Failed[0] != failed[0] || notes.Succeeded != 0 {
					t.Errorf("notifications %+v, want exactly one failure naming %v; %s", *notes, failed, notifyRuns(ex))
				}
				if tc.fix == nil {
					return
				}
				e.srv.Update(tc.fix)
				if err := r.Redrive(ctx, ex); err != nil {
					t.Fatal(err)
				}
				if ex.Status != asl.StatusSucceeded {
					t.Fatalf("redrive: %s %s: %s", ex.Status, ex.Error, causeMessage(ex.Cause))
				}
				if now := e.notified()[fi.ID]; now.Succeeded != 1 || len(now.Failed) != 1 {
					t.Errorf("notifications after the redrive %+v, want the failure, then one success", *now)
				}
				checkIsolated(ctx, t, e, fi, ex.Name, tc.leftOut)
			})
		})
	}
}

func eniOf(fi fleetInstance, k int) string {
	enis := slices.Sorted(maps.Keys(fi.ENIs))
	return enis[k]
}

func checkIsolated(ctx context.Context, t *testing.T, e *env, fi fleetInstance, execution string, leftOut func(fleetInstance) []string) {
	t.Helper()
	if leftOut != nil {
		fi.ENIs = maps.Clone(fi.ENIs)
		for _, eni := range leftOut(fi) {
			delete(fi.ENIs, eni)
		}
	}
	if p := e.isolationProblems(ctx, fi, execution); len(p) > 0 {
		t.Errorf("not isolated: %s", strings.Join(p, "; "))
	}
}

// TestLostPublishAnswerNotifiesTwiceNeverZero: SNS publishes a notification whose answer is then lost. The SDK
// cannot know it was published and sends it again: the responder gets it twice. That is the intended trade-off
// (SNS standard topics have no deduplication; not retrying would risk no notification at all), and why the soak
// does not apply SNS timeouts.
func TestLostPublishAnswerNotifiesTwiceNeverZero(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		sc, instances := fleet(2)
		sc.Faults.Errors = []sim.ErrorFault{{Action: "Publish", Timeout: time.Hour, Applied: true, FirstCalls: 1}}
		e := newEnv(t, sc, virtualOptions())
		ex := e.runners[secgroup.ModeDirect].Start(context.Background(), "lost-answer", event(instances[1].ID))
		if ex.Status != asl.StatusSucceeded {
			t.Fatalf("execution %s %s: %s", ex.Status, ex.Error, causeMessage(ex.Cause))
		}
		if notes := e.notified()[instances[1].ID]; notes == nil || notes.Succeeded != 2 || len(notes.Failed) != 0 {
			t.Errorf("notifications %+v, want the success twice (the first answer lost, the SDK's retry)", notes)
		}
	})
}
