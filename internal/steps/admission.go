package steps

import (
	"log/slog"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/ec2-isolation/ec2-isolation/internal/admission"
)

// AdmissionStarter builds the admission starter (issue 16; env ISOLATION_STATE_MACHINE_ARN, ADMISSION_WINDOW), fed
// by the isolation queue's event source mapping; it answers with the events it could not start.
func AdmissionStarter(cfg aws.Config, env Env, log *slog.Logger) (Handler[events.SQSEvent, events.SQSEventResponse], error) {
	s, err := admission.SettingsFromEnv(env)
	if err != nil {
		return nil, err
	}
	h, err := admission.New(sfn.NewFromConfig(cfg), s, log)
	if err != nil {
		return nil, err
	}
	return h.Handle, nil
}
