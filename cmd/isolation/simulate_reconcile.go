package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/reconcile"
	"github.com/ec2-isolation/ec2-isolation/internal/reconcile/simrun"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/status"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// reconcileResult is what `isolation simulate --reconcile` shows: the pass, the executions it started, the
// notifications, the metrics, and the status after.
type reconcileResult struct {
	Scenario      string              `json:"scenario"`
	Pass          reconcile.Report    `json:"pass"`
	Executions    []executionReport   `json:"executions"`
	Notifications []notificationShown `json:"notifications"`
	Metrics       json.RawMessage     `json:"metrics"`
	After         status.Report       `json:"after"`
}

// simulateReconcile runs one reconciler pass against the scenario (both state machines deployed in the
// simulated account, the real handlers), waits for the executions it started, and reports. Exit 1 when the pass
// failed or an execution it started did not succeed.
func simulateReconcile(ctx context.Context, f simulateFlags, stdout, stderr io.Writer) int {
	sc, err := loadScenario(f.scenario)
	if err != nil {
		fmt.Fprintln(stderr, "isolation simulate: scenario:", err)
		return 2
	}
	logOut := io.Discard
	if f.logs {
		logOut = stderr
	}
	h, err := simrun.Start(sc, map[string]string{"TAG_KEY": f.tagKey, "TAG_VALUE": f.tagValue, "RELEASE_TAG_VALUE": f.releaseValue,
		"ISOLATION_GROUP_NAME": f.groupName, "ISOLATION_PROFILE_NAME": f.profileName, "CONNECTION_TRACKING": f.tracking},
		slog.New(slog.NewJSONHandler(logOut, nil)), sim.WithClock(sim.NewScaledClock(f.speed)))
	if err != nil {
		fmt.Fprintln(stderr, "isolation simulate:", err)
		return 2
	}
	defer h.Close()
	for _, id := range strings.FieldsFunc(f.running, func(r rune) bool { return r == ',' }) {
		ev := workflow.TagEvent{Version: "0", ID: "tag-event-" + id, DetailType: "Tag Change on Resource", Source: "aws.tag",
			Account: h.Srv.AccountID(), Region: h.Srv.Region(),
			Resources: []string{fmt.Sprintf("arn:aws:ec2:%s:%s:instance/%s", h.Srv.Region(), h.Srv.AccountID(), id)},
			Detail: workflow.TagDetail{ChangedTagKeys: []string{f.tagKey}, Service: "ec2", ResourceType: "instance",
				Tags: map[string]string{f.tagKey: f.tagValue}}}
		b, _ := json.Marshal(ev)
		h.Srv.AddExecution(runner.StateMachineName, "eventbridge-"+id, string(b))
	}
	pass, err := h.Pass(ctx, time.Now().UTC().Format(time.RFC3339))
	if err != nil {
		fmt.Fprintln(stderr, "isolation simulate: the reconciler's pass:", err)
		return 1
	}
	res := reconcileResult{Scenario: f.scenario, Pass: pass, Executions: []executionReport{}, Notifications: []notificationShown{}}
	code := 0
	for _, in := range pass.Instances {
		name, ok := strings.CutPrefix(in.Action, "started ")
		if !ok {
			continue
		}
		if e := h.Execution(name); e != nil {
			res.Executions = append(res.Executions, report(e))
			if e.Status != asl.StatusSucceeded {
				code = 1
			}
		}
	}
	for _, m := range h.Srv.Messages() {
		res.Notifications = append(res.Notifications, showMessage(m.Subject, m.Message, m.MessageStructure))
	}
	res.Metrics = json.RawMessage(strings.TrimSpace(h.Metrics.String()))
	cfg := h.Srv.AWSConfig("responder")
	res.After, err = status.Read(ctx, ec2.NewFromConfig(cfg), s3.NewFromConfig(cfg), status.Settings{Verify: h.Settings.Verify,
		ReleaseValue: h.Settings.ReleaseValue, Bucket: h.Settings.Bucket, Account: h.Srv.AccountID(), Region: h.Srv.Region()}, "")
	if err != nil {
		fmt.Fprintln(stderr, "isolation simulate: status after the pass:", err)
		return 1
	}
	if f.json {
		if err := writeJSON(stdout, res); err != nil {
			fmt.Fprintln(stderr, "isolation simulate:", err)
			return 2
		}
		return code
	}
	printReconcile(stdout, res, f.tagKey, f.io)
	return code
}

func printReconcile(w io.Writer, res reconcileResult, key string, showIO bool) {
	p := res.Pass
	fmt.Fprintf(w, "Reconciler pass %s over scenario %s: %d tagged, %d contained, %d open (%d lost events, %d drift), %d releases pending; %d executions running, %d started, %d deferred; isolation groups: %d created, %d emptied\n\n",
		p.Pass, res.Scenario, p.Tagged, p.Contained, p.Open, p.LostEvents, p.Drift, p.ReleasePending, p.Running, p.Started,
		p.Deferred, p.GroupsCreated, p.GroupsEmptied)
	for _, in := range p.Instances {
		fmt.Fprintf(w, "  %s  %s=%s  wants %s, contained: %s\n", in.ID, key, in.Declared, orDash(in.Wants), yesNo(in.Contained))
		if in.Wants == "isolated" {
			for _, o := range in.Open {
				fmt.Fprintf(w, "      open: %s\n", o)
			}
		}
		if in.Action != "" {
			fmt.Fprintf(w, "      -> %s\n", in.Action)
		}
	}
	if len(p.Groups) > 0 {
		fmt.Fprintln(w, "\nIsolation groups kept ready:")
		for _, c := range p.Groups {
			fmt.Fprintf(w, "  %s %s: %s\n", c.Resource, c.Action, c.Detail)
		}
	}
	for _, e := range res.Executions {
		fmt.Fprintln(w)
		printExecution(w, e, showIO)
	}
	fmt.Fprintf(w, "\nNotifications published: %d\n", len(res.Notifications))
	for i, n := range res.Notifications {
		fmt.Fprintf(w, "  %d. %s\n", i+1, n.Subject)
		for _, l := range strings.Split(n.Email, "\n") {
			if strings.Contains(l, "Started by") || strings.Contains(l, "            open:") {
				fmt.Fprintf(w, "     %s\n", strings.TrimSpace(l))
			}
		}
	}
	fmt.Fprintf(w, "\nMetrics (CloudWatch embedded metric format, one line in the function's log):\n  %s\n", res.Metrics)
	fmt.Fprintf(w, "\nAfter the pass (isolation status): %d in their declared state, %d not", res.After.InState, res.After.NotInState)
	if !res.After.OK() {
		fmt.Fprintf(w, " (%s)", strings.Join(notInState(res.After), ", "))
	}
	fmt.Fprintln(w)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
