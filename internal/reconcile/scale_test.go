package reconcile_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/reconcile"
	"github.com/ec2-isolation/ec2-isolation/internal/reconcile/simrun"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// A pass over 10,000 tagged instances, all contained, nothing running, stays within the documented budget: 10
// DescribeInstances and 10 DescribeIamInstanceProfileAssociations (1,000 a page), 2 DescribeSecurityGroups, 2
// ListExecutions; no DescribeExecution, no change. Its metrics come out as one embedded metric format document.
func TestPassOverTenThousandInstances(t *testing.T) {
	const n = 10000
	sc := scenario(t)
	sc.Instances = nil
	sc.SecurityGroups = append(sc.SecurityGroups, sim.SecurityGroup{ID: "sg-0a1b2c3d4e5f0aaaa", VpcID: vpcA, Name: quarantine,
		Description: "quarantine", Egress: []sim.Rule{}, Tags: map[string]string{"ec2-isolation:managed": "true", "ec2-isolation:role": "isolation"}})
	for i := range n {
		id := fmt.Sprintf("i-%017x", 0x1000+i)
		sc.Instances = append(sc.Instances, sim.Instance{ID: id, SubnetID: "subnet-0a1111111111111a1", Profile: quarantine,
			Tags: map[string]string{"Isolate": "true"},
			NetworkInterfaces: []sim.NetworkInterface{{ID: fmt.Sprintf("eni-%017x", 0x1000+i), SubnetID: "subnet-0a1111111111111a1",
				Groups: []string{"sg-0a1b2c3d4e5f0aaaa"}}}})
	}
	// In process: over loopback a connection broken on a loaded machine is retried by the SDK and counts as a
	// second call (once 12 association pages for 10), and the count is the point of this test.
	h, err := simrun.Start(sc, nil, nil, sim.WithInProcess())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	rep, err := h.Pass(context.Background(), "2026-12-05T10:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Tagged != n || rep.Contained != n || rep.Open != 0 || rep.Started != 0 {
		t.Fatalf("tagged %d contained %d open %d started %d, want %d %d 0 0", rep.Tagged, rep.Contained, rep.Open, rep.Started, n, n)
	}
	got := map[string]int{}
	for _, c := range h.Srv.Calls() {
		got[c.Service+":"+c.Action]++
	}
	want := map[string]int{"ec2:DescribeInstances": 10, "ec2:DescribeIamInstanceProfileAssociations": 10,
		"ec2:DescribeSecurityGroups": 2, "ec2:DescribeNetworkInterfaces": 1, "states:ListExecutions": 2}
	if !maps.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	total := 0
	for _, v := range got {
		total += v
	}
	t.Logf("a pass over %d tagged instances: %d calls %v", n, total, got)

	// The embedded metric format document: _aws declares every metric under the namespace with the StateMachine
	// dimension; the values are at the root.
	lines := strings.Split(strings.TrimSpace(h.Metrics.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d metric documents, want 1", len(lines))
	}
	var doc struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		StateMachine string
		Tagged       int `json:"TaggedInstances"`
		Contained    int `json:"ContainedInstances"`
		Open         int `json:"OpenInstances"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &doc); err != nil {
		t.Fatal(err)
	}
	cw := doc.AWS.CloudWatchMetrics
	var names []string
	if len(cw) == 1 {
		for _, m := range cw[0].Metrics {
			names = append(names, m.Name)
		}
	}
	if len(cw) != 1 || cw[0].Namespace != reconcile.MetricNamespace || !slices.Equal(cw[0].Dimensions[0], []string{"StateMachine"}) ||
		!slices.Equal(names, slices.Sorted(maps.Keys(rep.Metrics()))) || doc.AWS.Timestamp == 0 {
		t.Errorf("_aws %+v, want one directive over every metric", doc.AWS)
	}
	if doc.StateMachine != "ec2-isolation" || doc.Tagged != n || doc.Contained != n || doc.Open != 0 {
		t.Errorf("values %+v, want StateMachine ec2-isolation, %d tagged and contained, 0 open", doc, n)
	}
}
