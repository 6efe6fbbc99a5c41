package bench

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// at is a span from a to b milliseconds after an origin.
func at(a, b int) Span {
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	return Span{Start: t0.Add(time.Duration(a) * time.Millisecond), End: t0.Add(time.Duration(b) * time.Millisecond)}
}

func TestRoundTrips(t *testing.T) {
	// Validate's four lookups at once (0-3), a create (4) after them, a revoke (5) after it, two modifies at once
	// (6, 7) after the revoke; 8 is another branch's chain (disassociate -> associate) that ended before 6 started.
	calls := []Span{
		at(0, 100), at(2, 101), at(1, 103), at(3, 100),
		at(130, 230),
		at(235, 335),
		at(360, 460), at(361, 462),
		at(110, 210), // 8: profile branch, call 1
		at(215, 315), // 9: profile branch, call 2 (ended before the modifies started)
		at(340, 350), // 10: an unrelated call that ended before the modifies
	}
	all := func(int) bool { return true }
	path := func(i int) bool { return i <= 7 }
	tests := []struct {
		name   string
		target int
		on     func(int) bool
		want   int
	}{
		{"a first call", 2, all, 1},
		{"calls made at once share a depth", 3, path, 1},
		{"after the lookups", 4, path, 2},
		{"cold path: lookups, create, revoke, modify", 7, path, 4},
		{"a concurrent sibling modify has the same depth", 6, path, 4},
		{"off-path calls that ended earlier would add depth", 7, all, 5},
		{"target not on the path", 9, path, 0},
		{"out of range", 42, all, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := RoundTrips(calls, tc.target, tc.on); got != tc.want {
				t.Errorf("RoundTrips(target %d) = %d, want %d", tc.target, got, tc.want)
			}
		})
	}
}

func TestRuntimeAPIServesOneInvocation(t *testing.T) {
	event := []byte(`{"instance":"i-0123"}`)
	api, err := StartRuntimeAPI(event, "arn:aws:lambda:us-east-1:123456789012:function:f", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	base := "http://" + api.Addr() + "/2018-06-01/runtime/"
	resp, err := http.Get(base + "invocation/next")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != string(event) {
		t.Errorf("event = %s, want %s", body, event)
	}
	id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
	for _, h := range []string{"Lambda-Runtime-Aws-Request-Id", "Lambda-Runtime-Deadline-Ms", "Lambda-Runtime-Invoked-Function-Arn"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("header %s missing", h)
		}
	}
	// An unknown request id is refused and not reported.
	bad, err := http.Post(base+"invocation/other-id/response", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	bad.Body.Close()
	if bad.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown request id: status %d, want 400", bad.StatusCode)
	}
	ok, err := http.Post(base+"invocation/"+id+"/response", "application/json", strings.NewReader(`{"done":true}`))
	if err != nil {
		t.Fatal(err)
	}
	ok.Body.Close()
	if ok.StatusCode != http.StatusAccepted {
		t.Errorf("response: status %d, want 202", ok.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := api.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != "response" || string(res.Body) != `{"done":true}` {
		t.Errorf("first answer = %s %s, want response {\"done\":true}", res.Kind, res.Body)
	}
	// A second /next waits (no second invocation) until the emulator closes.
	got := make(chan error, 1)
	go func() {
		r, err := http.Get(base + "invocation/next")
		if err == nil {
			r.Body.Close()
		}
		got <- err
	}()
	select {
	case <-got:
		t.Error("a second invocation/next was answered")
	case <-time.After(100 * time.Millisecond):
	}
	api.Close()
}

func TestBucketBound(t *testing.T) {
	for _, tc := range []struct {
		action string
		n      int
		want   time.Duration
	}{
		{"ModifyNetworkInterfaceAttribute", 1000, 180 * time.Second},
		{"ModifyNetworkInterfaceAttribute", 80, 0},
		{"CreateSecurityGroup", 1000, 190 * time.Second}, // mutating: 50, 5 per second
	} {
		if got := bucketBound(tc.action, tc.n).Time; got != tc.want {
			t.Errorf("bucketBound(%s, %d) = %v, want %v", tc.action, tc.n, got, tc.want)
		}
	}
}

func TestContainingCall(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	call := func(action string, end int, code string, params map[string][]string) sim.Call {
		status := 200
		if code != "" {
			status = 400
		}
		return sim.Call{Action: action, ErrorCode: code, HTTPStatus: status, Params: params,
			Start: t0, End: t0.Add(time.Duration(end) * time.Millisecond)}
	}
	modify := func(eni string, groups ...string) map[string][]string {
		p := map[string][]string{"NetworkInterfaceId": {eni}}
		for i, g := range groups {
			p["SecurityGroupId."+strconv.Itoa(i+1)] = []string{g}
		}
		return p
	}
	enis := []eniState{{id: "eni-1", groups: []string{"sg-iso"}}, {id: "eni-2", groups: []string{"sg-iso2"}}}
	calls := []sim.Call{
		call("ModifyNetworkInterfaceAttribute", 10, "", modify("eni-1", "sg-untrack")),                  // 0: not the final set
		call("ModifyNetworkInterfaceAttribute", 20, "RequestLimitExceeded", modify("eni-2", "sg-iso2")), // 1: refused
		call("ModifyNetworkInterfaceAttribute", 30, "", modify("eni-1", "sg-iso")),                      // 2: eni-1 contained
		call("ModifyNetworkInterfaceAttribute", 50, "", modify("eni-2", "sg-iso2")),                     // 3: eni-2 contained, last
		call("ModifyNetworkInterfaceAttribute", 90, "", modify("eni-1", "sg-iso")),                      // 4: a repeat, not the first
	}
	if got := containingCall(calls, "i-1", enis); got != 3 {
		t.Errorf("containingCall = %d, want 3", got)
	}
	if got := containingCall(calls[:3], "i-1", enis); got != -1 {
		t.Errorf("containingCall without eni-2's modify = %d, want -1", got)
	}
	// The article's ModifyInstanceAttribute contains the only ENI of a single-ENI instance.
	single := []eniState{{id: "eni-9", groups: []string{"sg-iso"}}}
	art := []sim.Call{call("ModifyInstanceAttribute", 40, "", map[string][]string{"InstanceId": {"i-1"}, "GroupId.1": {"sg-iso"}})}
	if got := containingCall(art, "i-1", single); got != 0 {
		t.Errorf("containingCall(ModifyInstanceAttribute) = %d, want 0", got)
	}
}
