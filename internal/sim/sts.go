package sim

// STS: GetCallerIdentity only, so that the commands a responder runs from a shell (isolation run, release,
// record) learn the account as they do in AWS.
var stsHandlers = map[string]handler{
	"GetCallerIdentity": getCallerIdentity,
}

type callerIdentity struct {
	UserId  string `xml:"UserId"`
	Account string `xml:"Account"`
	Arn     string `xml:"Arn"`
}

// getCallerIdentity answers as for an IAM user named after the caller's access key id
// (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html: Account, Arn and UserId of
// the calling entity; "No permissions are required to perform this operation", so it is never refused).
func getCallerIdentity(a *Account, req *request) (any, *apiError) {
	name := req.caller
	if name == "" {
		name = "anonymous"
	}
	return &callerIdentity{UserId: "AIDA" + name, Account: a.id, Arn: "arn:aws:iam::" + a.id + ":user/" + name}, nil
}
