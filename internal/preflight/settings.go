package preflight

import "github.com/ec2-isolation/ec2-isolation/internal/settings"

// The stack settings moved to internal/settings (issue 15, item 10); these names keep the callers that still say
// preflight.X compiling until they move.
type (
	Names       = settings.Names
	StackAPI    = settings.StackAPI
	Identity    = settings.Identity
	IdentityAPI = settings.IdentityAPI
)

const (
	DefaultStack      = settings.DefaultStack
	OutputGroupName   = settings.OutputGroupName
	OutputProfileName = settings.OutputProfileName
	OutputTopicARN    = settings.OutputTopicARN
	OutputBucket      = settings.OutputBucket
	ParamTagKey       = settings.ParamTagKey
	ParamTagValue     = settings.ParamTagValue
	ParamTracking     = settings.ParamTracking
	DefaultTagKey     = settings.DefaultTagKey
	DefaultTagValue   = settings.DefaultTagValue
)

var (
	ErrNoStack = settings.ErrNoStack
	Resolve    = settings.Resolve
	Identify   = settings.Identify
)
