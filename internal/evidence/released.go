package evidence

import (
	"context"
	"fmt"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/incident"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

type incidentStore struct {
	s3     incident.S3API
	bucket string
}

// released says why a settings job must change nothing: the incident that its isolation execution joined is
// released (the release restored the settings the job would undo). "" when it is not, when the record does not
// list the execution yet (the job can run before "Record pre-isolation state" has written it: the incident is
// then open), or when no incident bucket is configured.
func (h *Preserve) released(ctx context.Context, in workflow.EvidenceInput) (string, error) {
	if h.incidents == nil || in.Record == nil {
		return "", nil
	}
	execution := in.IsolationExecution
	if execution == "" {
		execution = in.ExecutionName
	}
	f, err := incident.Load(ctx, h.incidents.s3, h.incidents.bucket, workflow.IncidentKey(in.Record.Account, in.Record.Region, in.InstanceID))
	if err != nil || f == nil {
		return "", err
	}
	for _, inc := range f.Incidents {
		if inc.ReleasedAt == nil {
			continue
		}
		for _, e := range inc.Executions {
			if e.Workflow == workflow.WorkflowIsolation && e.ExecutionName == execution {
				return fmt.Sprintf("instance settings: %s was released at %s, after isolation %s queued this job: termination protection, shutdown behaviour and delete-on-termination left as the release restored them",
					in.InstanceID, inc.ReleasedAt.UTC().Format(time.RFC3339), execution), nil
			}
		}
	}
	return "", nil
}
