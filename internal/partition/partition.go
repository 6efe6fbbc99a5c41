// Package partition names the AWS partition of a region: every ARN starts arn:<partition>:. A deny on an ARN of
// the wrong partition never matches (issue 13 item 2), so nothing builds an ARN with a literal "aws".
package partition

import "strings"

// Of is the partition of a region
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html: aws, aws-cn for China, aws-us-gov for
// AWS GovCloud (US); the isolated and sovereign partitions by their region prefixes).
func Of(region string) string {
	for _, p := range []struct{ prefix, partition string }{
		{"cn-", "aws-cn"}, {"us-gov-", "aws-us-gov"}, {"us-isob-", "aws-iso-b"}, {"us-isof-", "aws-iso-f"},
		{"us-iso-", "aws-iso"}, {"eu-isoe-", "aws-iso-e"}, {"eusc-", "aws-eusc"},
	} {
		if strings.HasPrefix(region, p.prefix) {
			return p.partition
		}
	}
	return "aws"
}
