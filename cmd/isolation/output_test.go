package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// scenarioFile writes the default scenario, changed by edit, to a file for --scenario.
func scenarioFile(t *testing.T, edit func(*sim.Scenario)) string {
	t.Helper()
	sc, err := loadScenario("default")
	if err != nil {
		t.Fatal(err)
	}
	edit(&sc)
	data, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "scenario.json")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The printed report of an instance with one ENI and one volume, and of one with no volume (issue 15, item 9): no
// "1 ENIs" or "1 volumes", no "(s)", no empty "()", no "created by an earlier run" on the first run, and --io
// keeps each line short enough for the table to stay a table.
func TestOutputSaysWhatHappenedInEnglish(t *testing.T) {
	one := scenarioFile(t, func(sc *sim.Scenario) {
		in := &sc.Instances[0]
		in.NetworkInterfaces, in.Volumes = in.NetworkInterfaces[:1], in.Volumes[:1]
	})
	none := scenarioFile(t, func(sc *sim.Scenario) {
		in := &sc.Instances[0]
		in.NetworkInterfaces, in.Volumes = in.NetworkInterfaces[:1], nil
	})
	bad := regexp.MustCompile(`\b1 (ENIs|VPCs|volumes|snapshots|changes|executions|read-backs)\b|\(s\)|\(\)|created by an earlier run`)
	for name, args := range map[string][]string{
		"one volume": {"--scenario", one, "--io"},
		"no volume":  {"--scenario", none, "--io"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), append([]string{"simulate", "--speed", "20"}, args...), &out, &errOut); code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", name, code, out.String(), errOut.String())
		}
		for i, line := range strings.Split(out.String(), "\n") {
			if m := bad.FindString(line); m != "" {
				t.Errorf("%s: line %d says %q: %s", name, i+1, m, line)
			}
			if len([]rune(line)) > 500 {
				t.Errorf("%s: line %d is %d characters long: %.80s…", name, i+1, len([]rune(line)), line)
			}
		}
	}
}
