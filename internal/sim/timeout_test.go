package sim

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"
)

// attemptTimeout gives the config's clients a per-attempt timeout d (the HTTP client's).
func attemptTimeout(cfg aws.Config, d time.Duration) aws.Config {
	hc := *cfg.HTTPClient.(*http.Client)
	hc.Timeout = d
	cfg.HTTPClient = &hc
	return cfg
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestTimeoutFault(t *testing.T) {
	tag := func(c *ec2.Client) error {
		_, err := c.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{instWeb},
			Tags: []ec2types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
		return err
	}
	cases := []struct {
		name         string
		fault        ErrorFault
		clientWaits  time.Duration
		wantTimeout  bool // the client's own timeout fired (else it saw the connection closed)
		wantTagged   bool // the action took effect
		wantCallCode string
	}{
		{"not applied, client times out first", ErrorFault{Action: "CreateTags", Timeout: time.Minute}, 100 * time.Millisecond, true, false, "RequestTimeout"},
		{"applied, answer lost", ErrorFault{Action: "CreateTags", Timeout: time.Minute, Applied: true}, 100 * time.Millisecond, true, true, ""},
		{"connection closed before the client's timeout", ErrorFault{Action: "CreateTags", Timeout: time.Millisecond}, 10 * time.Second, false, false, "RequestTimeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc := baseScenario()
			sc.Faults.Errors = []ErrorFault{tc.fault}
			s, err := Start(sc)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			c := ec2.NewFromConfig(attemptTimeout(s.AWSConfig("AKIDTEST"), tc.clientWaits), func(o *ec2.Options) { o.RetryMaxAttempts = 1 })
			begin := time.Now()
			err = tag(c)
			if err == nil {
				t.Fatal("CreateTags answered despite the timeout fault")
			}
			if got := isTimeout(err); got != tc.wantTimeout {
				t.Errorf("client timeout = %v, want %v: %v", got, tc.wantTimeout, err)
			}
			if !tc.wantTimeout && time.Since(begin) > 5*time.Second {
				t.Errorf("the connection was not closed after the fault's short timeout: %v", err)
			}
			var tagged bool
			s.Update(func(a *Account) { tagged = a.tags[instWeb]["k"] == "v" })
			if tagged != tc.wantTagged {
				t.Errorf("tag set = %v, want %v", tagged, tc.wantTagged)
			}
			calls := s.Calls()
			if len(calls) != 1 || !calls[0].TimedOut || calls[0].HTTPStatus != 0 || calls[0].ErrorCode != tc.wantCallCode {
				t.Errorf("calls %+v, want one timed out with code %q", calls, tc.wantCallCode)
			}
		})
	}
}

func TestTimeoutFaultIsRetriedBySDK(t *testing.T) {
	sc := baseScenario()
	sc.Faults.Errors = []ErrorFault{{Action: "ModifyNetworkInterfaceAttribute", Timeout: time.Minute, FirstCalls: 2}}
	s, _, _ := start(t, sc)
	c := ec2.NewFromConfig(attemptTimeout(s.AWSConfig("AKIDTEST"), 100*time.Millisecond))
	if _, err := c.ModifyNetworkInterfaceAttribute(context.Background(), &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(eniWeb0), Groups: []string{sgSSH}}); err != nil {
		t.Fatalf("ModifyNetworkInterfaceAttribute after two timed-out attempts: %v", err)
	}
	if diff := cmp.Diff([]string{"RequestTimeout/0", "RequestTimeout/0", "/200"}, callSummary(s, "ModifyNetworkInterfaceAttribute")); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{sgSSH}, eniGroups(t, c, eniWeb0)); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
}

func TestTimeoutFaultInScenarioFile(t *testing.T) {
	sc, err := ParseScenario([]byte(`{"faults": {"errors": [{"action": "CreateSnapshots", "timeout": "30s", "applied": true, "rate": 0.5}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := ErrorFault{Action: "CreateSnapshots", Timeout: 30 * time.Second, Applied: true, Rate: 0.5}
	if diff := cmp.Diff(want, sc.Faults.Errors[0]); diff != "" {
		t.Errorf("decoded fault (-want +got):\n%s", diff)
	}
	for _, bad := range []string{
		`{"faults": {"errors": [{"action": "X"}]}}`,                   // neither code nor timeout
		`{"faults": {"errors": [{"code": "X", "applied": true}]}}`,    // applied without timeout
		`{"faults": {"errors": [{"timeout": 30}]}}`,                   // not a duration string
		`{"faults": {"errors": [{"timeout": "1s", "aplied": true}]}}`, // unknown field
	} {
		if _, err := ParseScenario([]byte(bad)); err == nil {
			t.Errorf("%s was accepted", bad)
		}
	}
}
