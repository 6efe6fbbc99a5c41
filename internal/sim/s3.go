package sim

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// S3 (REST-XML, path-style: http://127.0.0.1:port/<bucket>/<key>). The SDK picks path-style by itself when the
// endpoint's host is an IP address (S3's endpoint rules), so clients built from Server.AWSConfig need no option.
// Buckets come from the scenario; every version of every object is kept.

const s3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/"

var s3Handlers = map[string]handler{
	"PutObject":           putObject,
	"GetObject":           getObject,
	"HeadObject":          headObject,
	"DeleteObject":        deleteObject,
	"ListObjectVersions":  listObjectVersions,
	"GetBucketVersioning": getBucketVersioning,
	"HeadBucket":          headBucket,
}

type bucket struct {
	name       string
	policy     []resourceStatement // bucket policy (resourcepolicy.go)
	versioning bool
	created    time.Time
	objects    map[string][]*objectVersion // key -> versions, oldest first
	// publicAccessBlock is the bucket's PutPublicAccessBlock configuration (prereq.go), nil when none.
	publicAccessBlock *xPublicAccessBlock
}

type objectVersion struct {
	checksums                         http.Header
	key, versionID, etag, contentType string
	body                              []byte
	modified                          time.Time
	deleteMarker                      bool
}

// s3Request parses a path-style REST request into a request: the action comes from the method, the path and
// the sub-resource in the query.
func s3Request(r *http.Request, body []byte) *request {
	req := &request{method: r.Method, header: r.Header, params: url.Values{}}
	path := strings.TrimPrefix(r.URL.Path, "/")
	req.bucket, req.key, _ = strings.Cut(path, "/")
	q := r.URL.Query()
	for k, vs := range q {
		req.params[k] = vs
	}
	if req.bucket != "" {
		req.params.Set("Bucket", req.bucket)
	}
	if req.key != "" {
		req.params.Set("Key", req.key)
	}
	for _, h := range []string{"If-Match", "If-None-Match"} {
		if v := r.Header.Get(h); v != "" {
			req.params.Set(h, v)
		}
	}
	req.p = parseParams(url.Values{})
	if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
		var trailers http.Header
		body, trailers = decodeAWSChunked(body)
		req.header = r.Header.Clone()
		for k, vs := range trailers {
			req.header[k] = vs
		}
	}
	req.body = body
	switch {
	case req.bucket == "":
		req.action = r.Method + " /"
	case req.key == "":
		switch {
		case r.Method == http.MethodGet && q.Has("versioning"):
			req.action = "GetBucketVersioning"
		case r.Method == http.MethodGet && q.Has("versions"):
			req.action = "ListObjectVersions"
		case r.Method == http.MethodHead:
			req.action = "HeadBucket"
		default:
			req.action = r.Method + " bucket"
		}
	default:
		switch r.Method {
		case http.MethodPut:
			req.action = "PutObject"
		case http.MethodGet:
			req.action = "GetObject"
		case http.MethodHead:
			req.action = "HeadObject"
		case http.MethodDelete:
			req.action = "DeleteObject"
		default:
			req.action = r.Method + " object"
		}
	}
	return req
}

// decodeAWSChunked strips the aws-chunked framing ("<hex size>[;chunk-signature=...]\r\n<data>\r\n" ...,
// a zero-size chunk, then trailers) the SDK uses when it streams a checksum trailer; it returns the data and the
// trailers.
func decodeAWSChunked(b []byte) ([]byte, http.Header) {
	var out []byte
	trailers := http.Header{}
	for len(b) > 0 {
		line, rest, found := bytes.Cut(b, []byte("\r\n"))
		if !found {
			break
		}
		sizeHex, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(sizeHex)), 16, 64)
		if err != nil || int64(len(rest)) < n {
			break
		}
		if n == 0 {
			for _, l := range strings.Split(string(rest), "\r\n") {
				if k, v, ok := strings.Cut(l, ":"); ok {
					trailers.Add(strings.TrimSpace(k), strings.TrimSpace(v))
				}
			}
			break
		}
		out = append(out, rest[:n]...)
		b = bytes.TrimPrefix(rest[n:], []byte("\r\n"))
	}
	return out, trailers
}

// checksumHeaders are the full-object checksums a client may send with PutObject; S3 keeps them and returns them
// when GetObject/HeadObject ask with x-amz-checksum-mode: ENABLED (the SDK then validates the body).
var checksumHeaders = []string{"X-Amz-Checksum-Crc32", "X-Amz-Checksum-Crc32c", "X-Amz-Checksum-Crc64nvme",
	"X-Amz-Checksum-Sha1", "X-Amz-Checksum-Sha256"}

// s3Answer is the answer of an S3 action: headers, and a body (raw, or an XML document when xml is set).
type s3Answer struct {
	status int
	header http.Header
	body   []byte
	xml    any
}

func renderS3(req *request, ans answer) (int, http.Header, []byte) {
	h := http.Header{}
	h.Set("x-amz-request-id", req.requestID)
	h.Set("x-amz-id-2", "c2ltdWxhdGVk")
	if ans.err != nil {
		status := ans.err.Status
		if status == 0 {
			status = 400
		}
		for k, vs := range ans.err.header {
			h[k] = vs
		}
		h.Set("Content-Type", "application/xml")
		if req.method == http.MethodHead {
			return status, h, nil // HEAD answers carry no body; the SDK names the error from the status.
		}
		var buf bytes.Buffer
		buf.WriteString(xml.Header + `<Error><Code>`)
		_ = xml.EscapeText(&buf, []byte(ans.err.Code))
		buf.WriteString(`</Code><Message>`)
		_ = xml.EscapeText(&buf, []byte(ans.err.Message))
		buf.WriteString(`</Message>`)
		for _, f := range ans.err.fields {
			buf.WriteString(`<` + f[0] + `>`)
			_ = xml.EscapeText(&buf, []byte(f[1]))
			buf.WriteString(`</` + f[0] + `>`)
		}
		buf.WriteString(`<RequestId>` + req.requestID + `</RequestId><HostId>c2ltdWxhdGVk</HostId></Error>`)
		return status, h, buf.Bytes()
	}
	a, _ := ans.payload.(*s3Answer)
	if a == nil {
		a = &s3Answer{}
	}
	for k, vs := range a.header {
		h[k] = vs
	}
	status := a.status
	if status == 0 {
		status = 200
	}
	if a.xml != nil {
		var buf bytes.Buffer
		buf.WriteString(xml.Header)
		if err := xml.NewEncoder(&buf).Encode(a.xml); err != nil {
			return 500, h, []byte(xml.Header + `<Error><Code>InternalError</Code><Message>sim: cannot encode answer</Message></Error>`)
		}
		h.Set("Content-Type", "application/xml")
		return status, h, buf.Bytes()
	}
	if h.Get("Content-Length") == "" {
		h.Set("Content-Length", strconv.Itoa(len(a.body)))
	}
	return status, h, a.body
}

func s3err(status int, code, msg string, fields ...string) *apiError {
	e := &apiError{Status: status, Code: code, Message: msg}
	for i := 0; i+1 < len(fields); i += 2 {
		e.fields = append(e.fields, [2]string{fields[i], fields[i+1]})
	}
	return e
}

func (a *Account) s3Bucket(req *request) (*bucket, *apiError) {
	b := a.buckets.get(req.bucket)
	if b == nil {
		return nil, s3err(404, "NoSuchBucket", "The specified bucket does not exist", "BucketName", req.bucket)
	}
	action, onObject := s3Actions[req.action], req.key != ""
	if action == "DeleteObject" && req.params.Get("versionId") != "" {
		action = "DeleteObjectVersion"
	}
	resource := "arn:aws:s3:::" + b.name
	if onObject {
		resource += "/" + req.key
	}
	if !a.authorize(b.policy, requestContext{caller: a.principalOf(req.caller), action: "s3:" + action, resource: resource}) {
		// S3 answers 403 AccessDenied whatever denied the request.
		// https://docs.aws.amazon.com/AmazonS3/latest/userguide/troubleshoot-403-errors.html
		return nil, s3err(403, "AccessDenied", "Access Denied")
	}
	return b, nil
}

// s3Actions: the IAM action each simulated S3 operation is authorised as (Service Authorization Reference,
// Amazon S3: HeadObject needs s3:GetObject, HeadBucket s3:ListBucket, ListObjectVersions s3:ListBucketVersions).
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
var s3Actions = map[string]string{
	"PutObject": "PutObject", "GetObject": "GetObject", "HeadObject": "GetObject", "DeleteObject": "DeleteObject",
	"ListObjectVersions": "ListBucketVersions", "GetBucketVersioning": "GetBucketVersioning", "HeadBucket": "ListBucket",
}

func etagOf(body []byte) string {
	sum := md5.Sum(body)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// sameETag compares ETags with or without their quotes; "*" matches any.
func sameETag(want, got string) bool {
	return want == "*" || strings.Trim(want, `"`) == strings.Trim(got, `"`)
}

// current is the latest version of a key (nil when none); it may be a delete marker.
func (b *bucket) current(key string) *objectVersion {
	vs := b.objects[key]
	if len(vs) == 0 {
		return nil
	}
	return vs[len(vs)-1]
}

func (a *Account) newVersionID(b *bucket) string {
	if !b.versioning {
		return "null"
	}
	// S3 version ids are opaque 32-character strings.
	return fmt.Sprintf("v%015x%016x", a.ids.Uint64()>>4, a.ids.Uint64())
}

func objectHeaders(req *request, b *bucket, v *objectVersion) http.Header {
	h := http.Header{}
	if strings.EqualFold(req.header.Get("X-Amz-Checksum-Mode"), "ENABLED") {
		for k, vs := range v.checksums {
			h[k] = vs
		}
	}
	h.Set("ETag", v.etag)
	h.Set("Last-Modified", v.modified.UTC().Format(http.TimeFormat))
	if b.versioning {
		h.Set("x-amz-version-id", v.versionID)
	}
	ct := v.contentType
	if ct == "" {
		ct = "binary/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(len(v.body)))
	return h
}

// putObject stores a new version. Conditional writes
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html): If-None-Match: * fails with
// 412 PreconditionFailed when the key has a current object; If-Match: <etag> fails with 412 when the current
// object's ETag differs, and with 404 NoSuchKey when there is no current object.
func putObject(a *Account, req *request) (any, *apiError) {
	b, err := a.s3Bucket(req)
	if err != nil {
		return nil, err
	}
	cur := b.current(req.key)
	if cur != nil && cur.deleteMarker {
		cur = nil
	}
	if inm := req.header.Get("If-None-Match"); inm != "" {
		if inm != "*" {
			return nil, s3err(501, "NotImplemented", "A header you provided implies functionality that is not implemented", "Header", "If-None-Match")
		}
		if cur != nil {
			return nil, s3err(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold", "Condition", "If-None-Match")
		}
	}
	if im := req.header.Get("If-Match"); im != "" {
		if cur == nil {
			return nil, s3err(404, "NoSuchKey", "The specified key does not exist.", "Key", req.key)
		}
		if !sameETag(im, cur.etag) {
			return nil, s3err(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold", "Condition", "If-Match")
		}
	}
	v := &objectVersion{key: req.key, versionID: a.newVersionID(b), etag: etagOf(req.body),
		contentType: req.header.Get("Content-Type"), body: slices.Clone(req.body), modified: a.clock.Now(),
		checksums: http.Header{}}
	for _, k := range checksumHeaders {
		if c := req.header.Get(k); c != "" {
			v.checksums.Set(k, c)
		}
	}
	if b.versioning {
		b.objects[req.key] = append(b.objects[req.key], v)
	} else {
		b.objects[req.key] = []*objectVersion{v}
	}
	h := v.checksums.Clone()
	h.Set("ETag", v.etag)
	if b.versioning {
		h.Set("x-amz-version-id", v.versionID)
	}
	return &s3Answer{header: h}, nil
}

// findVersion resolves key (and versionId) to a stored object, with S3's errors.
func (a *Account) findVersion(b *bucket, req *request) (*objectVersion, *apiError) {
	vid := req.params.Get("versionId")
	if vid == "" {
		v := b.current(req.key)
		if v == nil {
			return nil, s3err(404, "NoSuchKey", "The specified key does not exist.", "Key", req.key)
		}
		if v.deleteMarker {
			e := s3err(404, "NoSuchKey", "The specified key does not exist.", "Key", req.key)
			e.header = http.Header{"X-Amz-Delete-Marker": {"true"}, "X-Amz-Version-Id": {v.versionID}}
			return nil, e
		}
		return v, nil
	}
	for _, v := range b.objects[req.key] {
		if v.versionID != vid {
			continue
		}
		if v.deleteMarker {
			e := s3err(405, "MethodNotAllowed", "The specified method is not allowed against this resource.",
				"Method", req.method, "ResourceType", "DeleteMarker")
			e.header = http.Header{"X-Amz-Delete-Marker": {"true"}, "X-Amz-Version-Id": {v.versionID}}
			return nil, e
		}
		return v, nil
	}
	return nil, s3err(404, "NoSuchVersion", "The specified version does not exist.", "Key", req.key, "VersionId", vid)
}

func getObject(a *Account, req *request) (any, *apiError) {
	b, err := a.s3Bucket(req)
	if err != nil {
		return nil, err
	}
	v, err := a.findVersion(b, req)
	if err != nil {
		return nil, err
	}
	return &s3Answer{header: objectHeaders(req, b, v), body: slices.Clone(v.body)}, nil
}

func headObject(a *Account, req *request) (any, *apiError) {
	b, err := a.s3Bucket(req)
	if err != nil {
		return nil, err
	}
	v, err := a.findVersion(b, req)
	if err != nil {
		return nil, err
	}
	return &s3Answer{header: objectHeaders(req, b, v)}, nil
}

func headBucket(a *Account, req *request) (any, *apiError) {
	if _, err := a.s3Bucket(req); err != nil {
		return nil, err
	}
	return &s3Answer{header: http.Header{"X-Amz-Bucket-Region": {a.region}}}, nil
}

// deleteObject without versionId adds a delete marker in a versioned bucket (the versions stay); with a
// versionId it removes that version for good. Deleting what does not exist succeeds, as in S3.
func deleteObject(a *Account, req *request) (any, *apiError) {
	b, err := a.s3Bucket(req)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	vid := req.params.Get("versionId")
	switch {
	case vid != "":
		vs := b.objects[req.key]
		i := slices.IndexFunc(vs, func(v *objectVersion) bool { return v.versionID == vid })
		if i >= 0 {
			if vs[i].deleteMarker {
				h.Set("x-amz-delete-marker", "true")
			}
			b.objects[req.key] = slices.Delete(vs, i, i+1)
		}
		h.Set("x-amz-version-id", vid)
	case b.versioning:
		m := &objectVersion{key: req.key, versionID: a.newVersionID(b), deleteMarker: true, modified: a.clock.Now()}
		b.objects[req.key] = append(b.objects[req.key], m)
		h.Set("x-amz-delete-marker", "true")
		h.Set("x-amz-version-id", m.versionID)
	default:
		delete(b.objects, req.key)
	}
	return &s3Answer{status: 204, header: h}, nil
}

type xVersioningConfiguration struct {
	XMLName xml.Name `xml:"VersioningConfiguration"`
	Xmlns   string   `xml:"xmlns,attr"`
	Status  string   `xml:"Status,omitempty"`
}

func getBucketVersioning(a *Account, req *request) (any, *apiError) {
	b, err := a.s3Bucket(req)
	if err != nil {
		return nil, err
	}
	out := &xVersioningConfiguration{Xmlns: s3Namespace}
	if b.versioning {
		out.Status = "Enabled"
	}
	return &s3Answer{xml: out}, nil
}

type xListVersionsResult struct {
	XMLName         xml.Name          `xml:"ListVersionsResult"`
	Xmlns           string            `xml:"xmlns,attr"`
	Name            string            `xml:"Name"`
	Prefix          string            `xml:"Prefix"`
	KeyMarker       string            `xml:"KeyMarker"`
	VersionIDMarker string            `xml:"VersionIdMarker"`
	MaxKeys         int               `xml:"MaxKeys"`
	IsTruncated     bool              `xml:"IsTruncated"`
	Versions        []xObjectVersion  `xml:"Version"`
	DeleteMarkers   []xDeleteMarkerEn `xml:"DeleteMarker"`
}

type xOwner struct {
	ID string `xml:"ID"`
}

type xObjectVersion struct {
	Key          string `xml:"Key"`
	VersionID    string `xml:"VersionId"`
	IsLatest     bool   `xml:"IsLatest"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int    `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
	Owner        xOwner `xml:"Owner"`
}

type xDeleteMarkerEn struct {
	Key          string `xml:"Key"`
	VersionID    string `xml:"VersionId"`
	IsLatest     bool   `xml:"IsLatest"`
	LastModified string `xml:"LastModified"`
	Owner        xOwner `xml:"Owner"`
}

// listObjectVersions lists every version and delete marker under prefix, keys in order and the newest version
// of each key first, as S3 does. It answers at most 1000 entries and never paginates (IsTruncated false).
func listObjectVersions(a *Account, req *request) (any, *apiError) {
	b, err := a.s3Bucket(req)
	if err != nil {
		return nil, err
	}
	prefix := req.params.Get("prefix")
	out := &xListVersionsResult{Xmlns: s3Namespace, Name: b.name, Prefix: prefix, MaxKeys: 1000}
	keys := slices.Sorted(mapKeys(b.objects))
	owner := xOwner{ID: derivedID("owner", a.id)[6:]}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		vs := b.objects[k]
		for i := len(vs) - 1; i >= 0; i-- {
			v := vs[i]
			if v.deleteMarker {
				out.DeleteMarkers = append(out.DeleteMarkers, xDeleteMarkerEn{Key: k, VersionID: v.versionID,
					IsLatest: i == len(vs)-1, LastModified: ts(v.modified), Owner: owner})
				continue
			}
			out.Versions = append(out.Versions, xObjectVersion{Key: k, VersionID: v.versionID, IsLatest: i == len(vs)-1,
				LastModified: ts(v.modified), ETag: v.etag, Size: len(v.body), StorageClass: "STANDARD", Owner: owner})
		}
	}
	return &s3Answer{xml: out}, nil
}

// ---- for tests (call inside Server.Update) ----

// ObjectVersion is one stored version of an S3 object, oldest first in Account.ObjectVersions.
type ObjectVersion struct {
	VersionID    string
	ETag         string
	Body         []byte
	DeleteMarker bool
}

// ObjectVersions returns every version of an object (nil when the bucket or key is unknown).
func (a *Account) ObjectVersions(bucketName, key string) []ObjectVersion {
	b := a.buckets.get(bucketName)
	if b == nil {
		return nil
	}
	var out []ObjectVersion
	for _, v := range b.objects[key] {
		out = append(out, ObjectVersion{VersionID: v.versionID, ETag: v.etag, Body: slices.Clone(v.body), DeleteMarker: v.deleteMarker})
	}
	return out
}

// PutObject stores a new version of an object as another writer would (unconditionally).
func (a *Account) PutObject(bucketName, key string, body []byte) error {
	b := a.buckets.get(bucketName)
	if b == nil {
		return fmt.Errorf("no bucket %s", bucketName)
	}
	v := &objectVersion{key: key, versionID: a.newVersionID(b), etag: etagOf(body), body: slices.Clone(body),
		modified: a.clock.Now()}
	if b.versioning {
		b.objects[key] = append(b.objects[key], v)
	} else {
		b.objects[key] = []*objectVersion{v}
	}
	return nil
}
