package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/moto"
)

// The README's sample outputs are checked against a real run, like Go example tests, so that they cannot go stale
// (issue 15, item 9). A sample is a block of README.md between markers:
//
//	<!-- sample: ENV -->
//	```text
//	$ isolation ARGS
//	OUTPUT (stdout)
//	```
//	<!-- /sample -->
//
// ENV is sim (the command needs no account: simulate) or moto (a fresh moto account seeded as .ci/moto.sh seeds it,
// the standard configuration pointed at it; an instance id in ARGS stands for the seeded instance). A moto sample
// may say "moto, after: ARGS" to run another command first (e.g. a run before a record). The test runs each
// command and compares its output with the block, both normalised (normalise): what must vary between runs (ids,
// times, durations, ports, versions, the order of concurrent lines) is not compared; every line's words are.
//
// After a change to the workflow's states or wording, rewrite the samples from a real run:
//
//	go test ./cmd/isolation -run TestREADMESamples -update
//
// (moto samples need moto_server; without it they are skipped, except in CI.)
var update = flag.Bool("update", false, "rewrite README.md's samples from a real run")

const readmePath = "../../README.md"

var sampleBlock = regexp.MustCompile("(?s)<!-- sample: (sim|moto)(?:, after: ([^>]*?))? -->\n```text\n\\$ isolation ([^\n]*)\n(.*?)```\n<!-- /sample -->")

var instanceArg = regexp.MustCompile(`\bi-[0-9a-f]{8,17}\b`)

func TestREADMESamples(t *testing.T) {
	data, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	blocks := sampleBlock.FindAllSubmatchIndex(data, -1)
	if len(blocks) < 3 {
		t.Fatalf("README.md has %d sample blocks, want at least 3 (simulate, preflight, run)", len(blocks))
	}
	var rewritten bytes.Buffer
	last := 0
	for i, b := range blocks {
		env, after, args, want := string(data[b[2]:b[3]]), "", string(data[b[6]:b[7]]), string(data[b[8]:b[9]])
		if b[4] >= 0 {
			after = string(data[b[4]:b[5]])
		}
		var got, shownArgs string
		t.Run(fmt.Sprintf("%d %s", i+1, args), func(t *testing.T) {
			got, shownArgs = runSample(t, env, after, args)
			if *update {
				return
			}
			if diff := compareSample(want, got); diff != "" {
				t.Errorf("README.md's sample of `isolation %s` is stale (rewrite it: go test ./cmd/isolation -run TestREADMESamples -update):\n%s", args, diff)
			}
		})
		if *update && got != "" {
			rewritten.Write(data[last:b[6]])
			fmt.Fprintf(&rewritten, "%s\n%s", shownArgs, got)
			if !strings.HasSuffix(got, "\n") {
				rewritten.WriteString("\n")
			}
			last = b[9]
		}
	}
	if *update {
		rewritten.Write(data[last:])
		if err := os.WriteFile(readmePath, rewritten.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runSample runs `isolation ARGS` in env and returns its stdout and the arguments as run.
func runSample(t *testing.T, env, after, args string) (string, string) {
	t.Helper()
	fields := strings.Fields(args)
	if env == "moto" {
		s, _ := onMoto(t, moto.SeedOptions{Stack: true})
		for i, f := range fields {
			fields[i] = instanceArg.ReplaceAllString(f, s.InstanceID)
		}
		if after != "" {
			first := strings.Fields(instanceArg.ReplaceAllString(after, s.InstanceID))
			if code, out, errOut := cli(t, "", first...); code != exitOK {
				t.Fatalf("isolation %s: exit %d\n%s\n%s", after, code, out, errOut)
			}
		}
	}
	code, out, errOut := cli(t, "", fields...)
	if code != exitOK && code != exitFailed {
		t.Fatalf("isolation %s: exit %d\n%s", args, code, errOut)
	}
	return out, strings.Join(fields, " ")
}

// compareSample compares the normalised lines of want and got as multisets (the order of lines written by
// concurrent branches varies) and says which lines only one has.
func compareSample(want, got string) string {
	w, g := normalise(want), normalise(got)
	var missing, extra []string
	i, j := 0, 0
	for i < len(w) || j < len(g) {
		switch {
		case j == len(g) || (i < len(w) && w[i] < g[j]):
			missing = append(missing, w[i])
			i++
		case i == len(w) || g[j] < w[i]:
			extra = append(extra, g[j])
			j++
		default:
			i++
			j++
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return ""
	}
	var b strings.Builder
	for _, l := range missing {
		fmt.Fprintf(&b, "  only in README: %s\n", l)
	}
	for _, l := range extra {
		fmt.Fprintf(&b, "  only in the run: %s\n", l)
	}
	return b.String()
}

// What varies from run to run, replaced before comparing.
var normalisers = []struct {
	re  *regexp.Regexp
	new string
}{
	{regexp.MustCompile(`\b(i|eni|sg|vol|snap|vpc|subnet|iip-assoc|r|ami)-[0-9a-f]{8,17}\b`), "$1-…"},
	{regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})`), "TIME"},
	{regexp.MustCompile(`\b\d{8}T\d{6}Z?\b`), "TIME"},
	{regexp.MustCompile(`http://127\.0\.0\.1:\d+`), "http://127.0.0.1:PORT"},
	{regexp.MustCompile(`\bversion \S+`), "version V"},
	{regexp.MustCompile(`"(versionId|messageId|associationId)": "[^"]*"`), `"$1": "…"`},
	{regexp.MustCompile(`[+]?\b(\d+h)?(\d+m)?\d+(\.\d+)?(ns|µs|ms|s)\b`), "D"},
	// A Task's retries and an association still settling depend on timing, not on the workflow.
	{regexp.MustCompile(`(Task|Choice|Parallel|Pass|Succeed|Fail|Wait) +(Succeeded|Failed|Caught|Aborted|InProgress) +D +D +\d+`), "$1 $2 D D N"},
	{regexp.MustCompile(`\b(associating|associated)\b`), "associat…"},
	{regexp.MustCompile(`\b(attaching|attached) \(associat…\)`), "attach… (associat…)"},
	{regexp.MustCompile(`\((pending|completed)\)`), "(STATE)"},
	{regexp.MustCompile(`\s+`), " "},
}

// normalise is text's lines with what varies replaced, sorted.
func normalise(text string) []string {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		for _, n := range normalisers {
			l = n.re.ReplaceAllString(l, n.new)
		}
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	return lines
}
