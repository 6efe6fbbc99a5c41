package sim

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// An in-process server answers the SDK as the loopback one does, and inside a synctest bubble a withheld answer
// costs the client its timeout in virtual time, not in real time.
func TestInProcessInABubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := baseScenario()
		sc.Faults.Errors = []ErrorFault{{Action: "DescribeVpcs", Timeout: time.Hour, FirstCalls: 1}}
		s, err := Start(sc, WithInProcess())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		cfg := s.AWSConfig("AKIDTEST")
		cfg.RetryMaxAttempts = 1
		c := ec2.NewFromConfig(cfg)
		ctx := context.Background()
		begin := time.Now()
		if _, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); err == nil {
			t.Fatal("the withheld answer was answered")
		}
		if waited := time.Since(begin); waited != 30*time.Second {
			t.Errorf("the client waited %s of virtual time, want its 30 s timeout", waited)
		}
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instWeb}})
		if err != nil || len(out.Reservations) != 1 || aws.ToString(out.Reservations[0].Instances[0].InstanceId) != instWeb {
			t.Fatalf("DescribeInstances: %v %+v", err, out)
		}
	})
}

// Keyed fault draws do not depend on the order in which callers' calls arrive.
func TestKeyedFaultsIgnoreArrivalOrder(t *testing.T) {
	outcomes := func(order []string) map[string][]bool {
		sc := baseScenario()
		sc.Faults = Faults{Seed: 7, Keyed: true, Errors: []ErrorFault{{Code: "InternalError", Rate: 0.5}}}
		s, _, _ := start(t, sc)
		clients := map[string]*ec2.Client{}
		got := map[string][]bool{}
		for _, caller := range order {
			if clients[caller] == nil {
				cfg := s.AWSConfig(caller)
				cfg.RetryMaxAttempts = 1
				clients[caller] = ec2.NewFromConfig(cfg)
			}
			_, err := clients[caller].DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{})
			var ae interface{ ErrorCode() string }
			if err != nil && (!errors.As(err, &ae) || ae.ErrorCode() != "InternalError") {
				t.Fatalf("%s: %v", caller, err)
			}
			got[caller] = append(got[caller], err != nil)
		}
		return got
	}
	a := outcomes([]string{"A", "A", "A", "A", "A", "A", "B", "B", "B", "B", "B", "B"})
	b := outcomes([]string{"B", "A", "B", "B", "A", "A", "B", "A", "B", "A", "B", "A"})
	for _, caller := range []string{"A", "B"} {
		if !slices.Equal(a[caller], b[caller]) {
			t.Errorf("caller %s met faults %v in one order, %v in another", caller, a[caller], b[caller])
		}
	}
	if !slices.Contains(a["A"], true) || !slices.Contains(a["A"], false) {
		t.Errorf("rate 0.5 gave %v: the draws are not random", a["A"])
	}
}
