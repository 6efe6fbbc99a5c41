package asl_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"sync"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/citest"
	"github.com/google/go-cmp/cmp"
)

// Redrive continues at the failed state with the input it had, does not re-run the states that succeeded, keeps
// their history, and shows the redrive count in $$.Execution.RedriveCount.
func TestRedriveResumesAtFailedState(t *testing.T) {
	def := `{"StartAt":"A","States":{
		"A":{"Type":"Task","Resource":"a","ResultPath":"$.a","Next":"B"},
		"B":{"Type":"Task","Resource":"b","Parameters":{"a.$":"$.a","redrive.$":"$$.Execution.RedriveCount"},"ResultPath":"$.b","Next":"C"},
		"C":{"Type":"Pass","Parameters":{"a.$":"$.a","b.$":"$.b"},"End":true}}}`
	m := mustLoad(t, def)
	bFailsFirst := func(_ context.Context, _ any, call int) (any, error) {
		if call == 0 {
			return nil, &asl.TaskError{Name: "ConfigError", Cause: "TOPIC_ARN unset"}
		}
		return "B ok", nil
	}
	inv := newInvoker(map[string]taskFunc{"a": returns("A ok"), "b": bFailsFirst})
	e := m.Start(testCtx(t), "r-1", []byte(`{"x":1}`), inv, testOptions(&recSleeper{}))
	if e.Status != asl.StatusFailed || e.Error != "ConfigError" {
		t.Fatalf("first run: status %s error %s", e.Status, e.Error)
	}
	firstEvents := e.History.Events()

	if err := m.Redrive(testCtx(t), e, inv); err != nil {
		t.Fatal(err)
	}
	if e.Status != asl.StatusSucceeded || e.RedriveCount != 1 || e.Error != "" {
		t.Fatalf("after redrive: status %s redrives %d error %s %s", e.Status, e.RedriveCount, e.Error, e.Cause)
	}
	if diff := cmp.Diff(js(t, `{"a":"A ok","b":"B ok"}`), decode(t, e.Output)); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if inv.count("a") != 1 {
		t.Errorf("A ran %d times; a redrive must not re-run a state that succeeded", inv.count("a"))
	}
	wantB := []any{js(t, `{"a":"A ok","redrive":0}`), js(t, `{"a":"A ok","redrive":1}`)}
	if diff := cmp.Diff(wantB, inv.inputs("b")); diff != "" {
		t.Errorf("B inputs (-want +got):\n%s", diff)
	}

	events := e.History.Events()
	if diff := cmp.Diff(firstEvents, events[:len(firstEvents)]); diff != "" {
		t.Errorf("the first attempt's history changed (-before +after):\n%s", diff)
	}
	redriven := events[len(firstEvents)]
	if redriven.Type != asl.ExecutionRedriven || redriven.RedriveCount != 1 {
		t.Errorf("event after the first attempt: %+v, want ExecutionRedriven with count 1", redriven)
	}
	if next := events[len(firstEvents)+1]; next.Type != asl.TaskStateEntered || next.State != "B" {
		t.Errorf("the redrive started with %s %s, want TaskStateEntered B", next.Type, next.State)
	}
	var rows []string
	for _, r := range e.History.Summary() {
		rows = append(rows, r.Name+" "+string(r.Status)+" "+string(rune('0'+r.RedriveCount)))
	}
	if diff := cmp.Diff([]string{"A Succeeded 0", "B Failed 0", "B Succeeded 1", "C Succeeded 1"}, rows); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}

	err := m.Redrive(testCtx(t), e, inv)
	if !errors.Is(err, asl.ErrExecutionNotRedrivable) {
		t.Errorf("redriving a SUCCEEDED execution: %v, want ExecutionNotRedrivable", err)
	}
	if other := mustLoad(t, def); other.Redrive(testCtx(t), e, inv) == nil {
		t.Error("another machine redrove the execution")
	}
}

// A failed state is re-run with the input it had, even when that input was built by earlier states; a Fail
// state fails again.
func TestRedriveAFailStateFailsAgain(t *testing.T) {
	m := mustLoad(t, `{"StartAt":"P","States":{"P":{"Type":"Pass","Result":1,"ResultPath":"$.p","Next":"F"},"F":{"Type":"Fail","Error":"Nope"}}}`)
	e := m.Start(testCtx(t), "f", []byte(`{}`), newInvoker(nil), testOptions(&recSleeper{}))
	if err := m.Redrive(testCtx(t), e, newInvoker(nil)); err != nil {
		t.Fatal(err)
	}
	if e.Status != asl.StatusFailed || e.Error != "Nope" || e.RedriveCount != 1 {
		t.Fatalf("status %s error %s redrives %d", e.Status, e.Error, e.RedriveCount)
	}
	entered := 0
	for _, ev := range e.History.Events() {
		if ev.Type == asl.PassStateEntered {
			entered++
		}
	}
	if entered != 1 {
		t.Errorf("P entered %d times", entered)
	}
}

// In a Parallel state a redrive runs only the branches that failed, from their failed state; the branches that
// succeeded keep their outputs.
func TestRedriveParallelRunsOnlyFailedBranches(t *testing.T) {
	def := `{"StartAt":"Par","States":{
		"Par":{"Type":"Parallel","Next":"After","Branches":[
			{"StartAt":"A1","States":{
				"A1":{"Type":"Task","Resource":"a1","ResultPath":"$.a1","Next":"A2"},
				"A2":{"Type":"Task","Resource":"a2","ResultPath":"$.a2","End":true}}},
			{"StartAt":"B1","States":{
				"B1":{"Type":"Task","Resource":"b1","ResultPath":"$.b1","Next":"B2"},
				"B2":{"Type":"Task","Resource":"b2","Parameters":{"b1.$":"$.b1","redrive.$":"$$.Execution.RedriveCount"},"ResultPath":"$.b2","End":true}}}]},
		"After":{"Type":"Pass","End":true}}}`
	m := mustLoad(t, def)
	// B2 fails only once branch A has finished (A2 exited), so that A counts as succeeded, not aborted.
	aDone := make(chan struct{})
	var once sync.Once
	o := testOptions(&recSleeper{})
	o.OnEvent = func(ev asl.Event) {
		if ev.Type == asl.TaskStateExited && ev.State == "A2" {
			once.Do(func() { close(aDone) })
		}
	}
	b2 := func(_ context.Context, in any, call int) (any, error) {
		if call == 0 {
			<-aDone
			return nil, &asl.TaskError{Name: "Transient", Cause: "503"}
		}
		return "B2 ok", nil
	}
	inv := newInvoker(map[string]taskFunc{"a1": returns("A1 ok"), "a2": returns("A2 ok"), "b1": returns("B1 ok"), "b2": b2})
	e := m.Start(testCtx(t), "p", []byte(`{"id":"i-1"}`), inv, o)
	if e.Status != asl.StatusFailed || e.Error != "Transient" {
		t.Fatalf("first run: status %s error %s", e.Status, e.Error)
	}
	if err := m.Redrive(testCtx(t), e, inv); err != nil {
		t.Fatal(err)
	}
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("after redrive: status %s error %s %s", e.Status, e.Error, e.Cause)
	}
	want := js(t, `[{"id":"i-1","a1":"A1 ok","a2":"A2 ok"},{"id":"i-1","b1":"B1 ok","b2":"B2 ok"}]`)
	if diff := cmp.Diff(want, decode(t, e.Output)); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	counts := map[string]int{}
	for _, r := range []string{"a1", "a2", "b1", "b2"} {
		counts[r] = inv.count(r)
	}
	if diff := cmp.Diff(map[string]int{"a1": 1, "a2": 1, "b1": 1, "b2": 2}, counts); diff != "" {
		t.Errorf("task calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(js(t, `{"b1":"B1 ok","redrive":1}`), inv.inputs("b2")[1]); diff != "" {
		t.Errorf("B2's redriven input (-want +got):\n%s", diff)
	}
}

// A branch aborted because its sibling failed is redriven too, from the state it was in.
func TestRedriveParallelRerunsAbortedBranch(t *testing.T) {
	def := `{"StartAt":"Par","States":{"Par":{"Type":"Parallel","End":true,"Branches":[
		{"StartAt":"Fails","States":{"Fails":{"Type":"Task","Resource":"fails","End":true}}},
		{"StartAt":"Before","States":{
			"Before":{"Type":"Task","Resource":"before","ResultPath":"$.before","Next":"Slow"},
			"Slow":{"Type":"Task","Resource":"slow","ResultPath":"$.slow","End":true}}}]}}}`
	m := mustLoad(t, def)
	slowStarted := make(chan struct{})
	slow := func(ctx context.Context, _ any, call int) (any, error) {
		if call == 0 {
			close(slowStarted)
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return "slow ok", nil
	}
	fails := func(_ context.Context, _ any, call int) (any, error) {
		if call == 0 {
			<-slowStarted
			return nil, &asl.TaskError{Name: "AWSError", Cause: "boom"}
		}
		return "fails ok", nil
	}
	inv := newInvoker(map[string]taskFunc{"fails": fails, "before": returns("before ok"), "slow": slow})
	e := m.Start(testCtx(t), "p", []byte(`{}`), inv, testOptions(&recSleeper{}))
	if e.Status != asl.StatusFailed || e.Error != "AWSError" {
		t.Fatalf("first run: status %s error %s", e.Status, e.Error)
	}
	if err := m.Redrive(testCtx(t), e, inv); err != nil {
		t.Fatal(err)
	}
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("after redrive: status %s error %s %s", e.Status, e.Error, e.Cause)
	}
	if diff := cmp.Diff(js(t, `["fails ok",{"before":"before ok","slow":"slow ok"}]`), decode(t, e.Output)); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if inv.count("before") != 1 || inv.count("slow") != 2 || inv.count("fails") != 2 {
		t.Errorf("calls before=%d slow=%d fails=%d, want 1, 2, 2", inv.count("before"), inv.count("slow"), inv.count("fails"))
	}
}

// A TIMED_OUT execution is redriven from the state that was running, and the machine timeout starts again.
func TestRedriveTimedOut(t *testing.T) {
	m := mustLoad(t, `{"TimeoutSeconds":30,"StartAt":"T","States":{"T":{"Type":"Task","Resource":"t","End":true}}}`)
	task := func(ctx context.Context, _ any, call int) (any, error) {
		if call == 0 {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return "done", nil
	}
	inv := newInvoker(map[string]taskFunc{"t": task})
	e := m.Start(testCtx(t), "t", []byte(`{}`), inv, testOptions(&recSleeper{}))
	if e.Status != asl.StatusTimedOut {
		t.Fatalf("status %s", e.Status)
	}
	if err := m.Redrive(testCtx(t), e, inv); err != nil {
		t.Fatal(err)
	}
	if e.Status != asl.StatusSucceeded || string(e.Output) != `"done"` {
		t.Fatalf("after redrive: status %s output %s", e.Status, e.Output)
	}
}

// The project's definition, run with stand-in tasks that follow the workflow contract: a failure inside the
// Parallel is caught into a marker, "Notify failure" fails the execution; a redrive re-runs "Notify failure",
// which now names the state to resume at, and the execution completes.
func TestIsolationDefinitionFailureAndRedrive(t *testing.T) {
	raw, err := os.ReadFile("../../statemachine/isolation.asl.json")
	if err != nil {
		citest.Skipf(t, "definition not present: %v", err)
	}
	subs := map[string]string{}
	for _, n := range regexp.MustCompile(`\$\{(\w+)\}`).FindAllStringSubmatch(string(raw), -1) {
		subs[n[1]] = n[1]
	}
	subs["Partition"], subs["EvidenceQueueUrl"] = "aws", "https://sqs.us-east-1.amazonaws.com/123456789012/evidence"
	m, err := asl.Load(raw, subs)
	if err != nil {
		t.Fatal(err)
	}
	record := map[string]any{"instanceId": "i-1", "vpcIds": []any{"vpc-1"}, "reason": "tag Isolate=true"}
	ensure := func(_ context.Context, _ any, call int) (any, error) {
		if call == 0 {
			return nil, &asl.TaskError{Name: "AWSError", Cause: "UnauthorizedOperation"}
		}
		return map[string]any{"groups": []any{map[string]any{"vpcId": "vpc-1", "isolationGroupId": "sg-1"}}}, nil
	}
	// notify: on a redrive (redriveCount above every failure's) it names the failed state; else it reports and
	// fails the execution.
	notify := func(_ context.Context, in any, _ int) (any, error) {
		n := in.(map[string]any)
		if n["outcome"] == "SUCCEEDED" {
			return map[string]any{"published": true}, nil
		}
		redrives, _ := n["redriveCount"].(json.Number).Int64()
		failures := n["failures"].([]any)
		first := failures[0].(map[string]any)
		if at, _ := first["redriveCount"].(json.Number).Int64(); redrives > at {
			return map[string]any{"resumeAt": first["state"]}, nil
		}
		return nil, &asl.TaskError{Name: "IsolationFailed", Cause: "Ensure isolation security group: AWSError"}
	}
	inv := newInvoker(map[string]taskFunc{
		"ValidateAndRecordFunctionArn":      returns(record),
		"EnsureSecurityGroupFunctionArn":    ensure,
		"ApplySecurityGroupFunctionArn":     returns(map[string]any{"networkInterfaces": []any{}}),
		"DisassociateProfileFunctionArn":    returns(map[string]any{"disassociated": []any{}}),
		"AttachIsolationProfileFunctionArn": returns(map[string]any{"associationId": "iip-assoc-2"}),
		"SnapshotVolumesFunctionArn":        returns(map[string]any{"snapshots": []any{}}),
		"NotifyFunctionArn":                 notify,
		"RecordIncidentFunctionArn":         returns(map[string]any{"bucket": "b", "key": "k", "preIsolation": map[string]any{"record": record}}),
		"RevokeCredentialsFunctionArn":      returns(map[string]any{"roles": []any{}}),
		"PreserveEvidenceFunctionArn":       returns(map[string]any{"changes": []any{}}),
		"VerifyContainmentFunctionArn":      returns(map[string]any{"contained": true}),
		"arn:aws:states:::sqs:sendMessage":  returns(map[string]any{"MessageId": "m-1", "MD5OfMessageBody": "x"}),
	})
	event, err := os.ReadFile("../../events/isolate.json")
	if err != nil {
		event = []byte(`{"detail-type":"Tag Change on Resource"}`)
	}
	o := testOptions(&recSleeper{})
	o.WithTimeout = nil // the definition's task timeouts, unscaled
	e := m.Start(testCtx(t), "isolate-1", event, inv, o)
	if e.Status != asl.StatusFailed || e.Error != "IsolationFailed" {
		t.Fatalf("first run: status %s error %s %s", e.Status, e.Error, e.Cause)
	}
	if inv.count("ApplySecurityGroupFunctionArn") != 0 || inv.count("AttachIsolationProfileFunctionArn") != 1 {
		t.Errorf("first run: apply ran %d times (want 0), attach %d (want 1: the IAM branch is not aborted)",
			inv.count("ApplySecurityGroupFunctionArn"), inv.count("AttachIsolationProfileFunctionArn"))
	}

	if err := m.Redrive(testCtx(t), e, inv); err != nil {
		t.Fatal(err)
	}
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("after redrive: status %s error %s %s", e.Status, e.Error, e.Cause)
	}
	calls := map[string]int{}
	for _, r := range []string{"ValidateAndRecordFunctionArn", "EnsureSecurityGroupFunctionArn", "ApplySecurityGroupFunctionArn", "NotifyFunctionArn", "SnapshotVolumesFunctionArn"} {
		calls[r] = inv.count(r)
	}
	// The snapshot runs in both attempts: after the failed containment (evidence is kept even then) and again
	// after the resumed one (the step itself finds its set and creates nothing).
	want := map[string]int{"ValidateAndRecordFunctionArn": 1, "EnsureSecurityGroupFunctionArn": 2,
		"ApplySecurityGroupFunctionArn": 1, "NotifyFunctionArn": 3, "SnapshotVolumesFunctionArn": 2}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("task calls (-want +got):\n%s", diff)
	}
	notifies := inv.inputs("NotifyFunctionArn")
	if got := notifies[1].(map[string]any)["redriveCount"]; got != json.Number("1") {
		t.Errorf("redriven Notify failure saw redriveCount %v, want 1", got)
	}
}
