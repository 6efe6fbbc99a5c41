package lambdamain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

func TestHandlerReportsInitFailureAsConfigError(t *testing.T) {
	ok := func(context.Context) (aws.Config, error) { return aws.Config{Region: "eu-west-1"}, nil }
	tests := []struct {
		name       string
		load       func(context.Context) (aws.Config, error)
		build      steps.Build[string, string]
		wantReason string
	}{
		{
			name:       "configuration does not load",
			load:       func(context.Context) (aws.Config, error) { return aws.Config{}, errors.New("no such profile") },
			build:      func(aws.Config, steps.Env, *slog.Logger) (steps.Handler[string, string], error) { panic("built") },
			wantReason: "no such profile",
		},
		{
			name: "settings refused",
			load: ok,
			build: func(aws.Config, steps.Env, *slog.Logger) (steps.Handler[string, string], error) {
				return nil, &steperr.ConfigError{Reason: "TAG_KEY is not set"}
			},
			wantReason: "TAG_KEY is not set",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := Handler(context.Background(), slog.New(slog.NewJSONHandler(&logs, nil)), os.Getenv, tt.load, tt.build)
			for range 2 { // every invocation, not just the first
				_, err := h(context.Background(), "in")
				var ce *steperr.ConfigError
				if !errors.As(err, &ce) || ce.Reason != tt.wantReason {
					t.Fatalf("error = %#v, want ConfigError %q", err, tt.wantReason)
				}
			}
			var entry map[string]any
			if err := json.Unmarshal(logs.Bytes(), &entry); err != nil || entry["level"] != "ERROR" {
				t.Errorf("init failure not logged as one JSON error line: %q", logs.String())
			}
		})
	}
}

func TestHandlerServesBuiltHandler(t *testing.T) {
	var gotRegion string
	h := Handler(context.Background(), slog.New(slog.DiscardHandler), os.Getenv,
		func(context.Context) (aws.Config, error) { return aws.Config{Region: "eu-west-1"}, nil },
		func(cfg aws.Config, _ steps.Env, _ *slog.Logger) (steps.Handler[string, string], error) {
			gotRegion = cfg.Region
			return func(_ context.Context, in string) (string, error) { return "handled " + in, nil }, nil
		})
	out, err := h(context.Background(), "x")
	if err != nil || out != "handled x" || gotRegion != "eu-west-1" {
		t.Fatalf("got %q, %v (region %q)", out, err, gotRegion)
	}
}

func TestLoggerLevel(t *testing.T) {
	for level, wantDebug := range map[string]bool{"": false, "debug": true, "DEBUG": true, "warn": false, "nonsense": false} {
		var buf bytes.Buffer
		log := Logger(&buf, func(string) string { return level })
		log.Debug("d")
		if got := buf.Len() > 0; got != wantDebug {
			t.Errorf("LOG_LEVEL=%q: debug logged = %v, want %v", level, got, wantDebug)
		}
	}
}
