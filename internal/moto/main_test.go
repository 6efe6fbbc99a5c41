package moto_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"

	"github.com/ec2-isolation/ec2-isolation/internal/moto"
)

// srv is the moto_server of this package's tests, started once (moto takes seconds to start); nil when it could
// not be started, for the reason in startErr.
var (
	srv      *moto.Server
	startErr error
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	srv, startErr = moto.Start(ctx)
	cancel()
	code := m.Run()
	if srv != nil {
		srv.Close()
	}
	os.Exit(code)
}

// server returns the running moto_server with an empty account. Without moto_server the test is skipped, except
// in CI (CI=true), where moto is expected and its absence fails the test.
func server(t *testing.T) *moto.Server {
	t.Helper()
	if srv == nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("moto_server %s is required in CI: %v", moto.Version, startErr)
		}
		t.Skipf("moto tests skipped: %v", startErr)
	}
	if err := srv.Reset(context.Background()); err != nil {
		t.Fatalf("reset moto: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("moto_server output (tail, without the request log):\n%s", tail(withoutRequestLog(srv.Output()), 3000))
		}
	})
	return srv
}

// withoutRequestLog drops moto's one line per request, keeping warnings and tracebacks.
func withoutRequestLog(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, `] "GET `) && !strings.Contains(l, `] "POST `) || strings.Contains(l, `" 500 `) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// seed fills the account and returns what it created.
func seed(t *testing.T, s *moto.Server, o moto.SeedOptions) (moto.Seeded, moto.Clients) {
	t.Helper()
	c := moto.NewClients(s.Config("", ""))
	seeded, err := moto.Seed(context.Background(), c, o)
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	return seeded, c
}

// recorder records the operations a configuration's clients call, as "Service:Operation".
type recorder struct {
	mu    sync.Mutex
	calls []string
}

// config returns cfg with every call recorded.
func (r *recorder) config(cfg aws.Config) aws.Config {
	cfg = cfg.Copy()
	cfg.APIOptions = append(slices.Clip(cfg.APIOptions), func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("RecordCall",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				r.mu.Lock()
				r.calls = append(r.calls, awsmiddleware.GetServiceID(ctx)+":"+awsmiddleware.GetOperationName(ctx))
				r.mu.Unlock()
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
	return cfg
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = nil
}

// mutating lists the recorded calls that change something (anything but Describe, Get, List, Receive).
func (r *recorder) mutating() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.calls {
		_, op, _ := strings.Cut(c, ":")
		if !strings.HasPrefix(op, "Describe") && !strings.HasPrefix(op, "Get") && !strings.HasPrefix(op, "List") && !strings.HasPrefix(op, "Receive") {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprint(r.calls)
}
