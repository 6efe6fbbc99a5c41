package sim

// CloudFormation: DescribeStacks only, for the commands that read the stack's settings (internal/settings). The
// simulated account has no stack: a named stack is answered as CloudFormation answers one that does not exist,
// ValidationError "Stack with id NAME does not exist"
// (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html: "If the stack
// doesn't exist, a ValidationError is returned"); without a name, the account's stacks: none.

func init() {
	cloudformationHandlers["DescribeStacks"] = describeStacks
}

var cloudformationHandlers = map[string]handler{}

type describeStacksResult struct {
	Stacks []struct{} `xml:"Stacks>member"`
}

func describeStacks(_ *Account, req *request) (any, *apiError) {
	if name := req.p.str("StackName"); name != "" {
		return nil, errf(400, "ValidationError", "Stack with id %s does not exist", name)
	}
	return &describeStacksResult{}, nil
}
