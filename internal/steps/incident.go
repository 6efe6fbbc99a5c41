package steps

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ec2-isolation/ec2-isolation/internal/incident"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// RecordIncident builds "Record pre-isolation state", "Record outcome" and "Record release" (env
// INCIDENT_BUCKET; CENTRAL_BUCKET and CENTRAL_BUCKET_REGION for the organization's copy); the input's "phase"
// tells them apart (see incident.Input).
func RecordIncident(cfg aws.Config, env Env, log *slog.Logger) (Handler[incident.Input, workflow.IncidentRef], error) {
	bucket := env(incident.EnvBucket)
	if bucket == "" {
		return nil, &steperr.ConfigError{Reason: incident.EnvBucket + " is not set"}
	}
	r := incident.NewRecorder(newS3(cfg), autoscaling.NewFromConfig(cfg),
		elbv2.NewFromConfig(cfg), bucket, log)
	if central := env(incident.EnvCentralBucket); central != "" {
		// The central bucket's region (S3 does not redirect a client of another region), this function's credentials.
		region := env(incident.EnvCentralBucketRegion)
		if region == "" {
			return nil, &steperr.ConfigError{Reason: incident.EnvCentralBucket + " is set without " + incident.EnvCentralBucketRegion}
		}
		r.WithCentral(s3.NewFromConfig(cfg, func(o *s3.Options) {
			o.Region = region
			o.DisableLogOutputChecksumValidationSkipped = true
		}), central)
	}
	return r.Handle, nil
}

// ReadIncidentRecord builds "Read incident record" (env INCIDENT_BUCKET, TAG_KEY, RELEASE_TAG_VALUE,
// ISOLATION_GROUP_NAME).
func ReadIncidentRecord(cfg aws.Config, env Env, log *slog.Logger) (Handler[workflow.ValidateInput, workflow.ReleaseInput], error) {
	s, err := incident.ReaderSettingsFromEnv(env)
	if err != nil {
		return nil, err
	}
	return incident.NewReader(newS3(cfg), ec2.NewFromConfig(cfg), s, log).Handle, nil
}

// newS3 is the S3 client of the record steps. The SDK validates the checksum of the records it reads when S3 sends
// one; an object written without one (by hand, or by an emulator) is read unvalidated, which the SDK would log
// as a bare line on standard error for every read, outside the function's JSON logs.
func newS3(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
}
