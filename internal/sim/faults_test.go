package sim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/google/go-cmp/cmp"
)

// callSummary lists the calls of one action as "code/status" ("" code for success).
func callSummary(s *Server, action string) []string {
	var out []string
	for _, c := range s.Calls() {
		if c.Action == action {
			out = append(out, fmt.Sprintf("%s/%d", c.ErrorCode, c.HTTPStatus))
		}
	}
	return out
}

func TestTokenBucketsBurstAndRefill(t *testing.T) {
	sc := baseScenario()
	sc.Faults.TokenBuckets = TokenBuckets{Enabled: true, NonMutating: Bucket{Capacity: 3, RefillPerSecond: 1}}
	clock := NewManualClock(t0)
	s, c, _ := start(t, sc, WithClock(clock))
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); err != nil {
			t.Fatalf("call %d within capacity: %v", i, err)
		}
	}
	// Time does not move: the SDK's retries are all throttled and the error surfaces.
	_, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	wantErr(t, err, "RequestLimitExceeded", 503)
	got := callSummary(s, "DescribeVpcs")
	if len(got) != 3+6 || got[3] != "RequestLimitExceeded/503" || got[8] != "RequestLimitExceeded/503" {
		t.Errorf("calls: %v (want 3 successes, then the SDK's 6 throttled attempts)", got)
	}
	// Mutating actions have their own bucket.
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{instWeb}, Tags: []ec2types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); err != nil {
		t.Errorf("mutating call while non-mutating bucket is empty: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); err != nil {
		t.Errorf("after one second of refill: %v", err)
	}
}

func TestTokenBucketsDocumentedSizes(t *testing.T) {
	sc := baseScenario()
	sc.Faults.TokenBuckets = TokenBuckets{Enabled: true}
	// In process: over loopback a loaded machine once broke a kept-alive connection ("use of closed network
	// connection") and, with one attempt, the SDK reported it; the buckets are what this test is about.
	s, err := Start(sc, WithClock(NewManualClock(t0)), WithInProcess())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := ec2.NewFromConfig(s.AWSConfig("AKIDTEST"), func(o *ec2.Options) { o.RetryMaxAttempts = 1 })
	ctx := context.Background()
	// Unfiltered, unpaginated DescribeInstances: bucket of 50.
	for i := 0; i < 50; i++ {
		if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
			t.Fatalf("unfiltered call %d: %v", i, err)
		}
	}
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	wantErr(t, err, "RequestLimitExceeded", 503)
	// With a filter the call draws on the non-mutating bucket (100).
	filter := &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{instWeb}}}}
	for i := 0; i < 100; i++ {
		if _, err := c.DescribeInstances(ctx, filter); err != nil {
			t.Fatalf("filtered call %d: %v", i, err)
		}
	}
	_, err = c.DescribeInstances(ctx, filter)
	wantErr(t, err, "RequestLimitExceeded", 503)
}

// stepClock advances by step at every reading, so token refills depend on the number of requests, not on
// wall-clock time: the test is deterministic while the SDK sleeps for real between retries.
type stepClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}
func (c *stepClock) Sleep(time.Duration) {}

func TestThrottledCallsRecoverThroughSDKRetries(t *testing.T) {
	sc := baseScenario()
	sc.Faults.TokenBuckets = TokenBuckets{Enabled: true, Actions: map[string]Bucket{"ModifyNetworkInterfaceAttribute": {Capacity: 1, RefillPerSecond: 1}}}
	s, c, _ := start(t, sc, WithClock(&stepClock{now: t0, step: 150 * time.Millisecond}))
	ctx := context.Background()
	for _, groups := range [][]string{{sgSSH}, {sgWeb}} {
		if _, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eniWeb0), Groups: groups}); err != nil {
			t.Fatalf("ModifyNetworkInterfaceAttribute: %v", err)
		}
	}
	got := callSummary(s, "ModifyNetworkInterfaceAttribute")
	throttled := strings.Count(strings.Join(got, " "), "RequestLimitExceeded/503")
	if throttled == 0 || got[len(got)-1] != "/200" || len(got) != throttled+2 {
		t.Errorf("calls %v: want throttled attempts the SDK retried, then success", got)
	}
	if diff := cmp.Diff([]string{sgWeb}, eniGroups(t, c, eniWeb0)); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
}

func TestInjectedErrors(t *testing.T) {
	cases := []struct {
		name  string
		fault ErrorFault
		want  []string // calls of the action
		fails bool
	}{
		{"5xx first calls retried by the SDK", ErrorFault{Action: "DescribeInstances", Code: "InternalError", FirstCalls: 2},
			[]string{"InternalError/500", "InternalError/500", "/200"}, false},
		{"Unavailable is 503 and retried", ErrorFault{Action: "*", Service: "ec2", Code: "Unavailable", Count: 1},
			[]string{"Unavailable/503", "/200"}, false},
		{"client error is not retried", ErrorFault{Action: "DescribeInstances", Code: "UnauthorizedOperation", Message: "You are not authorized"},
			[]string{"UnauthorizedOperation/400"}, true},
		{"other caller unaffected", ErrorFault{Action: "DescribeInstances", Caller: "AKIDOTHER", Code: "InternalError"},
			[]string{"/200"}, false},
		{"other service unaffected", ErrorFault{Service: "sns", Code: "InternalError"},
			[]string{"/200"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc := baseScenario()
			sc.Faults.Errors = []ErrorFault{tc.fault}
			s, c, _ := start(t, sc)
			_, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{instWeb}})
			if tc.fails {
				wantErr(t, err, tc.fault.Code, 400)
			} else if err != nil {
				t.Fatalf("DescribeInstances: %v", err)
			}
			if diff := cmp.Diff(tc.want, callSummary(s, "DescribeInstances")); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInjectedErrorRateIsReproducible(t *testing.T) {
	run := func(seed uint64) []string {
		sc := baseScenario()
		sc.Faults.Seed = seed
		sc.Faults.Errors = []ErrorFault{{Action: "DescribeVpcs", Code: "SomeError", Rate: 0.5}}
		s, err := Start(sc)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		c := ec2.NewFromConfig(s.AWSConfig("AKIDTEST"), func(o *ec2.Options) { o.RetryMaxAttempts = 1 })
		for i := 0; i < 40; i++ {
			_, _ = c.DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{})
		}
		return callSummary(s, "DescribeVpcs")
	}
	a, b := run(7), run(7)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different draws (-first +second):\n%s", diff)
	}
	failed := strings.Count(strings.Join(a, " "), "SomeError")
	if failed == 0 || failed == len(a) {
		t.Errorf("rate 0.5 failed %d of %d calls", failed, len(a))
	}
}

func TestUpdateFaultsMidRun(t *testing.T) {
	s, c, _ := start(t, baseScenario())
	ctx := context.Background()
	s.Update(func(a *Account) {
		a.Faults.Errors = []ErrorFault{{Action: "DescribeVpcs", Code: "Blocked", Status: 403}}
	})
	_, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	wantErr(t, err, "Blocked", 403)
	s.Update(func(a *Account) { a.Faults.Errors = nil })
	if _, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); err != nil {
		t.Errorf("after clearing faults: %v", err)
	}
}

func TestLatencyGoesThroughTheClock(t *testing.T) {
	sc := baseScenario()
	sc.Faults.Latency = Latency{Default: time.Second, Actions: map[string]time.Duration{"DescribeVpcs": time.Minute}}
	clock := NewManualClock(t0)
	_, c, _ := start(t, sc, WithClock(clock))
	if _, err := c.DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{}); err != nil {
		t.Fatal(err)
	}
	if got := clock.Slept(); got != time.Minute+time.Second {
		t.Errorf("slept %v", got)
	}
}

func TestConcurrentClients(t *testing.T) {
	s, _, _ := start(t, baseScenario())
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := ec2.NewFromConfig(s.AWSConfig(fmt.Sprintf("AKID%02d", i)))
			groups := []string{sgWeb}
			if i%2 == 0 {
				groups = []string{sgSSH}
			}
			for j := 0; j < 4; j++ {
				if _, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eniDB0), Groups: groups}); err != nil {
					errs <- err
				}
				if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instDB}}); err != nil {
					errs <- err
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	calls := s.Calls()
	callers := map[string]bool{}
	for i, c := range calls {
		if c.Seq != i+1 {
			t.Fatalf("call %d has Seq %d", i, c.Seq)
		}
		callers[c.Caller] = true
	}
	if len(calls) != 16*4*2 || len(callers) != 16 {
		t.Errorf("%d calls from %d callers", len(calls), len(callers))
	}
}

func TestSNSValidation(t *testing.T) {
	s, _, n := start(t, baseScenario())
	ctx := context.Background()
	arn := "arn:aws:sns:us-east-1:123456789012:isolation"
	cases := []struct {
		name string
		in   sns.PublishInput
		code string
	}{
		{"plain", sns.PublishInput{Message: aws.String("hello")}, ""},
		{"subject of 100 characters", sns.PublishInput{Message: aws.String("x"), Subject: aws.String(strings.Repeat("s", 100))}, ""},
		{"subject of 101 characters", sns.PublishInput{Message: aws.String("x"), Subject: aws.String(strings.Repeat("s", 101))}, "InvalidParameter"},
		{"subject with a newline", sns.PublishInput{Message: aws.String("x"), Subject: aws.String("a\nb")}, "InvalidParameter"},
		{"message over 256 KiB", sns.PublishInput{Message: aws.String(strings.Repeat("m", 256*1024+1))}, "InvalidParameter"},
		{"message of 256 KiB", sns.PublishInput{Message: aws.String(strings.Repeat("m", 256*1024))}, ""},
		{"json without default", sns.PublishInput{Message: aws.String(`{"email":"e"}`), MessageStructure: aws.String("json")}, "InvalidParameter"},
		{"json default not a string", sns.PublishInput{Message: aws.String(`{"default":{"a":1}}`), MessageStructure: aws.String("json")}, "InvalidParameter"},
		{"json not parseable", sns.PublishInput{Message: aws.String(`{"default":`), MessageStructure: aws.String("json")}, "InvalidParameter"},
		{"json array", sns.PublishInput{Message: aws.String(`["default"]`), MessageStructure: aws.String("json")}, "InvalidParameter"},
		{"json with default", sns.PublishInput{Message: aws.String(`{"default":"d","email":"e","https":"{}"}`), MessageStructure: aws.String("json")}, ""},
	}
	published := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.TopicArn = aws.String(arn)
			_, err := n.Publish(ctx, &in)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("Publish: %v", err)
				}
				published++
				return
			}
			wantErr(t, err, tc.code, 400)
		})
	}
	if len(s.Messages()) != published {
		t.Errorf("%d messages recorded, %d accepted", len(s.Messages()), published)
	}
	if _, err := n.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String(`{"default":`), MessageStructure: aws.String("json")}); err == nil ||
		!strings.Contains(err.Error(), "Invalid parameter: Message Structure - JSON message body failed to parse") {
		t.Errorf("parse failure message: %v", err)
	}
	if _, err := n.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String(`{"email":"e"}`), MessageStructure: aws.String("json")}); err == nil ||
		!strings.Contains(err.Error(), "Invalid parameter: Message Structure - No default entry in JSON message body") {
		t.Errorf("missing default message: %v", err)
	}
}

func TestSNSTopics(t *testing.T) {
	_, _, n := start(t, baseScenario())
	ctx := context.Background()
	a, err := n.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("second")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("second")})
	if err != nil || aws.ToString(a.TopicArn) != aws.ToString(b.TopicArn) || aws.ToString(a.TopicArn) != "arn:aws:sns:us-east-1:123456789012:second" {
		t.Fatalf("CreateTopic twice: %v %v %v", err, aws.ToString(a.TopicArn), aws.ToString(b.TopicArn))
	}
	l, err := n.ListTopics(ctx, &sns.ListTopicsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var arns []string
	for _, tp := range l.Topics {
		arns = append(arns, aws.ToString(tp.TopicArn))
	}
	if diff := cmp.Diff([]string{"arn:aws:sns:us-east-1:123456789012:isolation", "arn:aws:sns:us-east-1:123456789012:second"}, arns); diff != "" {
		t.Errorf("ListTopics (-want +got):\n%s", diff)
	}
	attrs, err := n.GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: a.TopicArn})
	if err != nil || attrs.Attributes["TopicArn"] != aws.ToString(a.TopicArn) || attrs.Attributes["Owner"] != "123456789012" {
		t.Errorf("GetTopicAttributes: %v %+v", err, attrs)
	}
	_, err = n.GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: aws.String("arn:aws:sns:us-east-1:123456789012:nope")})
	wantErr(t, err, "NotFound", 404)
	_, err = n.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("bad name")})
	wantErr(t, err, "InvalidParameter", 400)
}

// The wire format itself, for what the SDK does not show: routing by credential scope, unknown actions and
// the error documents.
func TestWireFormat(t *testing.T) {
	s, _, _ := start(t, baseScenario())
	post := func(service string, form url.Values) (int, string) {
		req, err := http.NewRequest(http.MethodPost, s.URL()+"/", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDRAW/20261122/us-east-1/"+service+"/aws4_request, SignedHeaders=host, Signature=00")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	status, body := post("ec2", url.Values{"Action": {"RunInstances"}, "Version": {"2016-11-15"}})
	if status != 400 || !strings.Contains(body, "<Response><Errors><Error><Code>InvalidAction</Code>") || !strings.Contains(body, "<RequestID>") {
		t.Errorf("unknown EC2 action: %d %s", status, body)
	}
	status, body = post("sns", url.Values{"Action": {"Subscribe"}, "Version": {"2010-03-31"}})
	if status != 400 || !strings.Contains(body, "<ErrorResponse") || !strings.Contains(body, "<Type>Sender</Type><Code>InvalidAction</Code>") {
		t.Errorf("unknown SNS action: %d %s", status, body)
	}
	status, body = post("sns", url.Values{"Action": {"ListTopics"}, "Version": {"2010-03-31"}})
	if status != 200 || !strings.Contains(body, "<ListTopicsResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><ListTopicsResult>") ||
		!strings.Contains(body, "<ResponseMetadata><RequestId>") {
		t.Errorf("SNS answer: %d %s", status, body)
	}
	status, body = post("ec2", url.Values{"Action": {"DescribeVpcs"}, "Version": {"2016-11-15"}, "VpcId.1": {vpcB}})
	if status != 200 || !strings.Contains(body, `<DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>`) ||
		!strings.Contains(body, "<vpcSet><item><vpcId>"+vpcB+"</vpcId>") {
		t.Errorf("EC2 answer: %d %s", status, body)
	}
	calls := s.Calls()
	if calls[0].Caller != "AKIDRAW" || calls[1].Service != "sns" || calls[3].Params.Get("VpcId.1") != vpcB {
		t.Errorf("calls %+v", calls)
	}
}

func TestCloseIsImmediate(t *testing.T) {
	s, err := Start(baseScenario())
	if err != nil {
		t.Fatal(err)
	}
	c := ec2.NewFromConfig(s.AWSConfig("AKIDTEST"))
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = c.DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{})
		}()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(4 * time.Second): // a graceful shutdown would wait 5 s for unused connections
		t.Fatal("Close did not return")
	}
	if _, err := c.DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{}); err == nil {
		t.Error("call after Close succeeded")
	}
}
