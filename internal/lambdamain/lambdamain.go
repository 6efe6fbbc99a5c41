// Package lambdamain is the wiring every functions/<step>/main.go shares: the JSON logger, the AWS
// configuration, and a handler that reports a failed initialisation as a steperr.ConfigError on every
// invocation (so the execution fails at that state with a named error, instead of a crashing runtime).
package lambdamain

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ec2-isolation/ec2-isolation/internal/awscfg"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

// EnvLogLevel optionally sets the log level: debug, info (default), warn or error.
const EnvLogLevel = "LOG_LEVEL"

// Start builds the handler once, at init, and serves it. It does not return.
func Start[In, Out any](build steps.Build[In, Out]) {
	log := Logger(os.Stdout, os.Getenv)
	load := func(ctx context.Context) (aws.Config, error) { return awscfg.Load(ctx) }
	lambda.Start(Handler(context.Background(), log, os.Getenv, load, build))
}

// Handler builds the handler; if that fails it logs why and returns a handler that answers every invocation
// with the ConfigError.
func Handler[In, Out any](ctx context.Context, log *slog.Logger, getenv steps.Env,
	load func(context.Context) (aws.Config, error), build steps.Build[In, Out],
) steps.Handler[In, Out] {
	h, err := func() (steps.Handler[In, Out], error) {
		cfg, err := load(ctx)
		if err != nil {
			return nil, err
		}
		return build(cfg, getenv, log)
	}()
	if err == nil {
		return h
	}
	var ce *steperr.ConfigError
	if !errors.As(err, &ce) {
		ce = &steperr.ConfigError{Reason: err.Error()}
	}
	log.Error("initialisation failed", "error", ce)
	return func(context.Context, In) (Out, error) {
		var zero Out
		return zero, ce
	}
}

// Logger is the JSON logger of every function, at the level LOG_LEVEL names.
func Logger(w io.Writer, getenv func(string) string) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.TrimSpace(getenv(EnvLogLevel)))); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}
