// Package verify is "Verify containment", the isolation's final read-back.
//
// PLACEHOLDER (issue 12): this skeleton fixes the handler's signature for the workflow wiring; the read-back and
// the bounded re-containment replace it. It must not land on main as is.
package verify

import (
	"context"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Handler is the "Verify containment" Lambda handler.
type Handler struct {
	ec2 *ec2.Client
	log *slog.Logger
}

// New returns the handler.
func New(client *ec2.Client, log *slog.Logger) *Handler { return &Handler{ec2: client, log: log} }

// Handle reads the instance back.
func (h *Handler) Handle(ctx context.Context, in workflow.VerifyInput) (workflow.VerifyOutput, error) {
	return workflow.VerifyOutput{Contained: true, Rounds: 1, NetworkInterfaces: []workflow.VerifiedInterface{}, Groups: []workflow.VerifiedGroup{}, Associations: []workflow.ProfileAssociation{}}, nil
}
