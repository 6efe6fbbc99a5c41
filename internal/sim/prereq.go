package sim

import (
	"encoding/xml"
	"net/http"
	"strings"
)

// The create calls a responder without a stack needs (isolation run --create-prerequisites): an IAM role and
// instance profile, a topic (sns.go's CreateTopic), and a versioned bucket with its public access blocked.

func init() {
	iamHandlers["CreateRole"] = createRole
	iamHandlers["CreateInstanceProfile"] = createInstanceProfile
	iamHandlers["AddRoleToInstanceProfile"] = addRoleToInstanceProfile
	s3Handlers["PUT bucket"] = putBucket
	s3Handlers["GET bucket"] = getBucketSubresource
}

type createRoleResult struct {
	Role xIAMRole `xml:"Role"`
}

// createRole: EntityAlreadyExists (409) when the name is taken
// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html); the trust policy is required.
func createRole(a *Account, req *request) (any, *apiError) {
	name, err := iamNameParam(req, "RoleName", 64)
	if err != nil {
		return nil, err
	}
	trust := req.p.str("AssumeRolePolicyDocument")
	if trust == "" {
		return nil, errf(400, "ValidationError", "1 validation error detected: Value null at 'assumeRolePolicyDocument' failed to satisfy constraint: Member must not be null")
	}
	if a.roles.get(name) != nil {
		return nil, errf(409, "EntityAlreadyExists", "Role with name %s already exists.", name)
	}
	a.addRole(Role{Name: name, Path: req.p.str("Path"), AssumeRolePolicyDocument: PolicyDocument(trust)}, a.clock.Now())
	return &createRoleResult{Role: a.roles.get(name).xml()}, nil
}

type createInstanceProfileResult struct {
	InstanceProfile xInstanceProfile `xml:"InstanceProfile"`
}

// createInstanceProfile: EntityAlreadyExists (409) when the name is taken
// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateInstanceProfile.html). A new profile has no role.
func createInstanceProfile(a *Account, req *request) (any, *apiError) {
	name, err := iamNameParam(req, "InstanceProfileName", 128)
	if err != nil {
		return nil, err
	}
	if a.profiles.get(name) != nil {
		return nil, errf(409, "EntityAlreadyExists", "Instance Profile %s already exists.", name)
	}
	a.AddInstanceProfile(name, "", 0)
	p := a.profiles.get(name)
	return &createInstanceProfileResult{InstanceProfile: xInstanceProfile{Path: "/", InstanceProfileName: name,
		InstanceProfileID: p.id, Arn: p.arn, CreateDate: iamTS(a.clock.Now())}}, nil
}

// addRoleToInstanceProfile: a profile holds one role; a second is LimitExceeded (409), an unknown profile or
// role NoSuchEntity (404) (https://docs.aws.amazon.com/IAM/latest/APIReference/API_AddRoleToInstanceProfile.html).
func addRoleToInstanceProfile(a *Account, req *request) (any, *apiError) {
	name, err := iamNameParam(req, "InstanceProfileName", 128)
	if err != nil {
		return nil, err
	}
	r, err := a.iamRole(req)
	if err != nil {
		return nil, err
	}
	p := a.profiles.get(name)
	if p == nil {
		return nil, errf(404, "NoSuchEntity", "Instance Profile %s cannot be found.", name)
	}
	if p.role != "" {
		return nil, errf(409, "LimitExceeded", "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1")
	}
	p.role = r.name
	return &struct{}{}, nil
}

type xPublicAccessBlock struct {
	XMLName               xml.Name `xml:"PublicAccessBlockConfiguration"`
	Xmlns                 string   `xml:"xmlns,attr,omitempty"`
	BlockPublicAcls       bool     `xml:"BlockPublicAcls"`
	IgnorePublicAcls      bool     `xml:"IgnorePublicAcls"`
	BlockPublicPolicy     bool     `xml:"BlockPublicPolicy"`
	RestrictPublicBuckets bool     `xml:"RestrictPublicBuckets"`
}

// putBucket is CreateBucket, PutBucketVersioning (?versioning) or PutPublicAccessBlock (?publicAccessBlock).
func putBucket(a *Account, req *request) (any, *apiError) {
	switch {
	case req.params.Has("versioning"):
		b, err := a.s3Bucket(req)
		if err != nil {
			return nil, err
		}
		var v xVersioningConfiguration
		if xml.Unmarshal(req.body, &v) != nil || (v.Status != "Enabled" && v.Status != "Suspended") {
			return nil, s3err(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
		}
		b.versioning = v.Status == "Enabled"
		return &s3Answer{}, nil
	case req.params.Has("publicAccessBlock"):
		b, err := a.s3Bucket(req)
		if err != nil {
			return nil, err
		}
		var pab xPublicAccessBlock
		if xml.Unmarshal(req.body, &pab) != nil {
			return nil, s3err(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
		}
		pab.Xmlns = s3Namespace
		b.publicAccessBlock = &pab
		return &s3Answer{}, nil
	case len(req.params) > 1: // Bucket, and a sub-resource the simulator does not know
		return nil, s3err(501, "NotImplemented", "sim: this bucket sub-resource is not simulated")
	}
	return createBucket(a, req)
}

// createBucket: names of 3 to 63 lowercase letters, digits, dots and hyphens
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html). Re-creating one's own bucket
// is BucketAlreadyOwnedByYou (409), except in us-east-1 where S3 answers 200 OK for legacy compatibility
// (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html). A new bucket is unversioned; S3
// encrypts every new object with SSE-S3 by default since January 5, 2023
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingServerSideEncryption.html).
func createBucket(a *Account, req *request) (any, *apiError) {
	name := req.bucket
	if !bucketName.MatchString(name) || strings.Contains(name, "..") {
		return nil, s3err(400, "InvalidBucketName", "The specified bucket is not valid.", "BucketName", name)
	}
	if a.buckets.get(name) != nil {
		if a.region == "us-east-1" {
			return &s3Answer{header: http.Header{"Location": {"/" + name}}}, nil
		}
		return nil, s3err(409, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.", "BucketName", name)
	}
	a.buckets.put(name, &bucket{name: name, created: a.clock.Now(), objects: map[string][]*objectVersion{}})
	return &s3Answer{header: http.Header{"Location": {"/" + name}}}, nil
}

// getBucketSubresource is GetPublicAccessBlock (?publicAccessBlock): NoSuchPublicAccessBlockConfiguration (404)
// when none was put (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetPublicAccessBlock.html).
func getBucketSubresource(a *Account, req *request) (any, *apiError) {
	if !req.params.Has("publicAccessBlock") {
		return nil, s3err(501, "NotImplemented", "sim: this bucket sub-resource is not simulated")
	}
	b, err := a.s3Bucket(req)
	if err != nil {
		return nil, err
	}
	if b.publicAccessBlock == nil {
		return nil, s3err(404, "NoSuchPublicAccessBlockConfiguration", "The public access block configuration was not found", "BucketName", b.name)
	}
	return &s3Answer{xml: b.publicAccessBlock}, nil
}

// PublicAccessBlocked says whether all four public access settings of the bucket are on (for tests).
func (a *Account) PublicAccessBlocked(bucketName string) bool {
	b := a.buckets.get(bucketName)
	if b == nil || b.publicAccessBlock == nil {
		return false
	}
	p := b.publicAccessBlock
	return p.BlockPublicAcls && p.IgnorePublicAcls && p.BlockPublicPolicy && p.RestrictPublicBuckets
}
