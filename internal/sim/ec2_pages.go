package sim

import "strconv"

// ec2Page is EC2's MaxResults/NextToken pagination over n items: the slice [from, to) this request answers and
// the token of the next page ("" on the last). Without MaxResults every item comes back in one answer (as the
// product's single-instance calls expect). The bounds are DescribeInstances' and
// DescribeIamInstanceProfileAssociations' (5 to 1000;
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstances.html,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeIamInstanceProfileAssociations.html); a
// token is the index of the next item. withIDs: MaxResults cannot be combined with explicit ids.
func ec2Page(req *request, n int, withIDs bool) (from, to int, next string, err *apiError) {
	to = n
	if tok := req.p.str("NextToken"); tok != "" {
		i, convErr := strconv.Atoi(tok)
		if convErr != nil || i < 0 || i > n {
			return 0, 0, "", errf(400, "InvalidParameterValue", "Invalid value '%s' for nextToken", tok)
		}
		from = i
	}
	if !req.p.has("MaxResults") {
		return from, to, "", nil
	}
	if withIDs {
		return 0, 0, "", errf(400, "InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
	}
	m, convErr := strconv.Atoi(req.p.str("MaxResults"))
	if convErr != nil || m < 5 || m > 1000 {
		return 0, 0, "", errf(400, "InvalidParameterValue", "Value ( %s ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.", req.p.str("MaxResults"))
	}
	if from+m < n {
		return from, from + m, strconv.Itoa(from + m), nil
	}
	return from, n, "", nil
}
