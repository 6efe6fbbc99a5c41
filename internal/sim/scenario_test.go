package sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadScenarioExample(t *testing.T) {
	sc, err := LoadScenario("testdata/scenario.json")
	if err != nil {
		t.Fatalf("LoadScenario: %v", err)
	}
	if len(sc.Instances) != 3 || sc.InstanceProfiles[1].VisibleAfter != time.Second ||
		sc.Behaviour.AssociationSettle != 300*time.Millisecond || sc.Faults.Latency.Actions["CreateSnapshots"] != 20*time.Millisecond ||
		!sc.Faults.TokenBuckets.Enabled || sc.Faults.Errors[0].FirstCalls != 1 {
		t.Errorf("decoded scenario: %+v", sc)
	}
	s, err := Start(sc)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	s.Close()
}

func TestLoadScenarioStrict(t *testing.T) {
	good, err := os.ReadFile("testdata/scenario.json")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, from, to, wantErr string }{
		{"unknown top-level field", `"region": "us-east-1",`, `"region": "us-east-1", "regoin": "x",`, "regoin"},
		{"unknown instance field", `"profile": "web-profile",`, `"profile": "web-profile", "profil": "x",`, "profil"},
		{"unknown behaviour field", `"associationSettle"`, `"associationSetle"`, "associationSetle"},
		{"unknown fault field", `"firstCalls": 1`, `"firstcall": 1`, "firstcall"},
		{"unknown latency field", `"default": "2ms"`, `"defualt": "2ms"`, "defualt"},
		{"unknown rule field", `"description": "https"`, `"descr": "https"`, "descr"},
		{"duration not a string", `"visibleAfter": "1s"`, `"visibleAfter": 1000`, "duration"},
		{"malformed duration", `"snapshotCompleteAfter": "2s"`, `"snapshotCompleteAfter": "2 seconds"`, "2 seconds"},
		{"unknown group on ENI", `"groups": ["sg-0a1b2c3d4e5f60002"]`, `"groups": ["sg-0a1b2c3d4e5f69999"]`, "sg-0a1b2c3d4e5f69999"},
		{"group of another VPC on ENI", `"groups": ["sg-0a1b2c3d4e5f60002"]`, `"groups": ["sg-0a1b2c3d4e5f60001"]`, "is in"},
		{"unknown profile", `"profile": "web-profile"`, `"profile": "nope"`, "nope"},
		{"bad id prefix", `"id": "i-0a1b2c3d4e5f60003"`, `"id": "x-0a1b2c3d4e5f60003"`, "must start with"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := string(good)
			if !strings.Contains(text, c.from) {
				t.Fatalf("example lacks %q", c.from)
			}
			path := filepath.Join(t.TempDir(), "s.json")
			if err := os.WriteFile(path, []byte(strings.Replace(text, c.from, c.to, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadScenario(path)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("LoadScenario error = %v, want one mentioning %q", err, c.wantErr)
			}
		})
	}
}
