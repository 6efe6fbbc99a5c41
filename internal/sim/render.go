package sim

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"time"
)

const (
	ec2Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"
	snsNamespace = "http://sns.amazonaws.com/doc/2010-03-31/"
)

// ec2Head starts every EC2 answer: <XResponse xmlns=...><requestId>...</requestId>...
type ec2Head struct {
	RequestID string `xml:"requestId"`
}

func (h *ec2Head) setRequestID(id string) { h.RequestID = id }

type hasRequestID interface{ setRequestID(string) }

// returnTrue is the answer of EC2 actions that only say they worked.
type returnTrue struct {
	ec2Head
	Return bool `xml:"return"`
}

func ok() *returnTrue { return &returnTrue{Return: true} }

// queryNamespaces are the XML namespaces of the awsquery services' answers.
var queryNamespaces = map[string]string{
	"sns":                  snsNamespace,
	"iam":                  "https://iam.amazonaws.com/doc/2010-05-08/",
	"autoscaling":          "http://autoscaling.amazonaws.com/doc/2011-01-01/",
	"elasticloadbalancing": "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
	"sts":                  "https://sts.amazonaws.com/doc/2011-06-15/",
}

// render serialises an answer in the service's wire format: status, extra headers, body.
func (s *Server) render(req *request, ans answer) (int, http.Header, []byte) {
	if req.service == "s3" {
		return renderS3(req, ans)
	}
	if req.service == "sqs" {
		return renderSQS(req, ans)
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	ns, query := queryNamespaces[req.service]
	if ans.err != nil {
		status := ans.err.Status
		if status == 0 {
			status = 400
		}
		if query {
			// awsquery error: <ErrorResponse><Error><Type>Sender</Type><Code>...</Code><Message>...</Message></Error><RequestId>
			typ := "Sender"
			if status >= 500 {
				typ = "Receiver"
			}
			buf.WriteString(`<ErrorResponse xmlns="` + ns + `"><Error><Type>` + typ + `</Type><Code>`)
			_ = xml.EscapeText(&buf, []byte(ans.err.Code))
			buf.WriteString(`</Code><Message>`)
			_ = xml.EscapeText(&buf, []byte(ans.err.Message))
			buf.WriteString(`</Message></Error><RequestId>` + req.requestID + `</RequestId></ErrorResponse>`)
			return status, nil, buf.Bytes()
		}
		// ec2query error: <Response><Errors><Error><Code>...</Code><Message>...</Message></Error></Errors><RequestID>
		buf.WriteString(`<Response><Errors><Error><Code>`)
		_ = xml.EscapeText(&buf, []byte(ans.err.Code))
		buf.WriteString(`</Code><Message>`)
		_ = xml.EscapeText(&buf, []byte(ans.err.Message))
		buf.WriteString(`</Message></Error></Errors><RequestID>` + req.requestID + `</RequestID></Response>`)
		return status, nil, buf.Bytes()
	}
	enc := xml.NewEncoder(&buf)
	if query {
		buf.WriteString(`<` + req.action + `Response xmlns="` + ns + `">`)
		if ans.payload != nil {
			_ = enc.EncodeElement(ans.payload, xml.StartElement{Name: xml.Name{Local: req.action + "Result"}})
		} else {
			buf.WriteString(`<` + req.action + `Result/>`)
		}
		_ = enc.Flush()
		buf.WriteString(`<ResponseMetadata><RequestId>` + req.requestID + `</RequestId></ResponseMetadata></` +
			req.action + `Response>`)
		return 200, nil, buf.Bytes()
	}
	p := ans.payload
	if p == nil {
		p = ok()
	}
	if h, ok := p.(hasRequestID); ok {
		h.setRequestID(req.requestID)
	}
	start := xml.StartElement{Name: xml.Name{Local: req.action + "Response"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: ec2Namespace}}}
	if err := enc.EncodeElement(p, start); err != nil {
		return 500, nil, []byte(xml.Header + `<Response><Errors><Error><Code>InternalError</Code><Message>` +
			"sim: cannot encode answer" + `</Message></Error></Errors><RequestID>` + req.requestID + `</RequestID></Response>`)
	}
	_ = enc.Flush()
	return 200, nil, buf.Bytes()
}

// ts formats a timestamp as EC2 does (ISO 8601, milliseconds, UTC).
func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
