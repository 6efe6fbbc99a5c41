package bench

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
)

//go:embed coldstart.py
var pythonFunction []byte

// ColdStart is one function's cold start: process start to the first invocation's answer received by the
// Runtime API emulator, the median of Runs runs.
type ColdStart struct {
	Function string
	Median   time.Duration
	Min, Max time.Duration
	Runs     int
	Size     int64 // binary size in bytes (0 for Python)
	// Kind of the first answer: response, error or init-error.
	Kind string
	// Event says which event it got.
	Event string
}

// buildFunctions builds every functions/<dir> as the Makefile does (-tags lambda.norpc -trimpath -ldflags="-s
// -w", CGO off) but for the host, in one go build, into dir.
func buildFunctions(ctx context.Context, repo, dir string) (time.Duration, error) {
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w",
		"-o", dir+string(filepath.Separator), "./functions/...")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("go build ./functions/...: %w\n%s", err, out)
	}
	return time.Since(start), nil
}

// coldStarts measures every function's bootstrap and the Python function.
func (b *bench) coldStarts(ctx context.Context) ([]ColdStart, time.Duration, error) {
	dir, err := os.MkdirTemp("", "isolation-bench-")
	if err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(dir)
	build, err := buildFunctions(ctx, b.opts.Repo, dir)
	if err != nil {
		return nil, 0, err
	}
	// The events: each function's input in a real execution (an isolation of a copy of the base instance,
	// run in-process first); the binaries then run against the same simulated account. Validate gets the event of
	// an instance not yet isolated; the others their execution's input again (they find their work done: every
	// step reads first and changes only what is missing).
	sc, err := b.baseScenario()
	if err != nil {
		return nil, 0, err
	}
	done := cloneInstance(sc.Instances[0], 1, 0, "")
	fresh := cloneInstance(sc.Instances[0], 2, 0, "")
	released := cloneInstance(sc.Instances[0], 3, 0, "")
	sc.Instances = append(sc.Instances, done, fresh, released)
	sc = withLatency(sc, 0, false)
	h, err := newHarness(harnessConfig{Scenario: sc, Factor: 1, Env: b.env})
	if err != nil {
		return nil, 0, err
	}
	defer h.Close()
	ev, err := tagEvent(b.opts.Event, sc, done.ID)
	if err != nil {
		return nil, 0, err
	}
	e := h.start(ctx, "bench-cold-start", ev)
	if e.Status != asl.StatusSucceeded {
		return nil, 0, fmt.Errorf("isolation of %s for the functions' events: %s %s: %s", done.ID, e.Status, e.Error, e.Cause)
	}
	inputs := map[string]json.RawMessage{}
	from := map[string]string{}
	collect := func(h *harness, e *asl.Execution, what string) {
		for _, ev := range e.History.Events() {
			if ev.Type == asl.TaskScheduled {
				if name := h.names[ev.Resource]; name != "" && inputs[name] == nil {
					inputs[name], from[name] = ev.Input, what
				}
			}
		}
	}
	collect(h, e, "its input in an isolation")
	// The release workflow's functions: their inputs in the release of another instance, isolated then released
	// (so that the isolation functions above keep an isolated instance to find).
	if sample, err := b.releaseEvent(); err == nil && ec2isolation.ReleaseDefinition != nil {
		iso, err := tagEvent(b.opts.Event, sc, released.ID)
		if err != nil {
			return nil, 0, err
		}
		if e := h.start(ctx, "bench-cold-start-isolate", iso); e.Status != asl.StatusSucceeded {
			return nil, 0, fmt.Errorf("isolation of %s: %s %s: %s", released.ID, e.Status, e.Error, e.Cause)
		}
		rh, err := newHarness(harnessConfig{Definition: ec2isolation.ReleaseDefinition, Env: b.env, server: h.srv, clock: h.clock})
		if err != nil {
			return nil, 0, fmt.Errorf("release runner: %w", err)
		}
		ev, err := tagEvent(sample, sc, released.ID)
		if err != nil {
			return nil, 0, err
		}
		h.srv.ApplyTagEvent(ev) // the responder's release tag: the release acts on the current tag
		re := rh.start(ctx, "bench-cold-start-release", ev)
		if re.Status != asl.StatusSucceeded {
			return nil, 0, fmt.Errorf("release of %s for the functions' events: %s %s: %s", released.ID, re.Status, re.Error, re.Cause)
		}
		collect(rh, re, "its input in a release")
	}
	freshEvent, err := tagEvent(b.opts.Event, sc, fresh.ID)
	if err != nil {
		return nil, 0, err
	}
	if v, ok := inputs["validate-and-record"]; ok {
		var in map[string]any
		if json.Unmarshal(v, &in) == nil {
			in["event"] = json.RawMessage(freshEvent)
			inputs["validate-and-record"], _ = json.Marshal(in)
		}
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	var out []ColdStart
	for _, ent := range entries {
		name := ent.Name()
		bin := filepath.Join(dir, name)
		fi, err := os.Stat(bin)
		if err != nil {
			return nil, 0, err
		}
		input, what := inputs[name], from[name]
		if name == "validate-and-record" {
			what = "a tag event for an instance not yet isolated"
		}
		if input == nil {
			input, what = json.RawMessage(`{}`), "{} (no workflow ran it)"
		}
		cs, err := b.measure(ctx, name, []string{bin}, b.functionEnv(h, name), input)
		if err != nil {
			return nil, 0, err
		}
		cs.Size, cs.Event = fi.Size(), what
		out = append(out, cs)
	}
	// Python: the same clients, the raw tag event as EventBridge delivers it to the article's function.
	py, err := realPython(ctx)
	if err != nil {
		b.progress("cold start: no Python comparison: %v", err)
	} else {
		file := filepath.Join(dir, "coldstart.py")
		if err := os.WriteFile(file, pythonFunction, 0o600); err != nil {
			return nil, 0, err
		}
		cs, err := b.measure(ctx, "python3 + boto3 (article-style)", []string{py, file}, b.functionEnv(h, "python"), freshEvent)
		if err != nil {
			return nil, 0, err
		}
		cs.Event = "the tag event (EventBridge -> Lambda, as the article); " + py
		out = append(out, cs)
	}
	return out, build, nil
}

// functionEnv is a function's Lambda environment: its template settings, the Runtime API, the region, static
// credentials whose key id names it (the simulator records the caller), the simulator as endpoint, and no
// shared config files or instance metadata (nothing outside the emulated environment is read).
func (b *bench) functionEnv(h *harness, name string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.TempDir(),
		"AWS_REGION=" + h.srv.Region(), "AWS_DEFAULT_REGION=" + h.srv.Region(),
		"AWS_ACCESS_KEY_ID=" + name, "AWS_SECRET_ACCESS_KEY=simulated-secret",
		"AWS_ENDPOINT_URL=" + h.srv.URL(),
		"AWS_CONFIG_FILE=" + filepath.Join(os.TempDir(), "isolation-bench-no-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(os.TempDir(), "isolation-bench-no-credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_LAMBDA_FUNCTION_NAME=" + runner.StateMachineName + "-" + name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(b.memory(name)),
		"LOG_LEVEL=error",
	}
	vars := b.dep.Env[name]
	if vars == nil {
		vars = b.env
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

func (b *bench) memory(name string) int {
	if m := b.dep.Memory[name]; m > 0 {
		return m
	}
	return 128
}

// measure starts the program Runs times, each with a fresh Runtime API emulator serving input, and times process
// start -> the first answer received.
func (b *bench) measure(ctx context.Context, name string, argv, env []string, input []byte) (ColdStart, error) {
	cs := ColdStart{Function: name, Runs: b.opts.Runs}
	var times []time.Duration
	for range b.opts.Runs {
		api, err := StartRuntimeAPI(input, "arn:aws:lambda:us-east-1:123456789012:function:"+name, time.Minute)
		if err != nil {
			return cs, err
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(slices.Clone(env), "AWS_LAMBDA_RUNTIME_API="+api.Addr(), "_HANDLER=bootstrap")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Start(); err != nil {
			api.Close()
			return cs, fmt.Errorf("start %s: %w", name, err)
		}
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		res, err := api.Wait(wctx)
		cancel()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		api.Close()
		if err != nil {
			return cs, fmt.Errorf("%s gave no answer: %w\n%s", name, err, stderr.String())
		}
		if res.Kind != "response" && cs.Kind == "" {
			cs.Kind = res.Kind + ": " + truncate(string(res.Body), 160)
		}
		times = append(times, res.At.Sub(start))
	}
	if cs.Kind == "" {
		cs.Kind = "response"
	}
	slices.Sort(times)
	cs.Median, cs.Min, cs.Max = median(times), times[0], times[len(times)-1]
	return cs, nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// releaseEvent is the sample release event (events/release.json).
func (b *bench) releaseEvent() ([]byte, error) {
	return ec2isolation.Events.ReadFile("events/release.json")
}

// realPython is the interpreter python3 on PATH runs, resolved once before any measurement: python3 on PATH may
// be a version manager's shell shim (pyenv's adds about 0.3 s to every start), and the comparison is between
// interpreters, not shims.
func realPython(ctx context.Context) (string, error) {
	shim, err := exec.LookPath("python3")
	if err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, shim, "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		return "", fmt.Errorf("%s -c 'print(sys.executable)': %w", shim, err)
	}
	real := strings.TrimSpace(string(out))
	fi, err := os.Stat(real)
	switch {
	case err != nil:
		return "", fmt.Errorf("python3 names its interpreter %q: %w", real, err)
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("python3 names its interpreter %q, not an executable file", real)
	}
	return real, nil
}
