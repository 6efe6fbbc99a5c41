package steps

import (
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/ec2-isolation/ec2-isolation/internal/reconcile"
)

// Reconcile builds the reconciler (env of reconcile.SettingsFromEnv). Its metrics go to standard output in the
// CloudWatch embedded metric format, where Lambda's log capture takes them.
func Reconcile(cfg aws.Config, env Env, log *slog.Logger) (Handler[reconcile.Event, reconcile.Report], error) {
	s, err := reconcile.SettingsFromEnv(env)
	if err != nil {
		return nil, err
	}
	h := reconcile.New(ec2.NewFromConfig(cfg), sfn.NewFromConfig(cfg), s3.NewFromConfig(cfg), s, log)
	h.Metrics = os.Stdout
	return h.Handle, nil
}
