package requesttransformer

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// maxBody is the largest body transformed. A longer one is refused with
// 413 rather than sent untransformed (a remove rule may be what keeps a
// field from the service) or truncated.
const maxBody = 8 << 20

const (
	msgBodyTooLarge = "Request body too large"
	msgUnexpected   = "An unexpected error occurred"
)

type kind uint8

const (
	kindOther kind = iota
	kindJSON
	kindMultipart
	kindForm
)

// contentKind classifies a Content-Type as Kong does: by substring.
func contentKind(ct string) kind {
	ct = strings.ToLower(ct)
	switch {
	case strings.Contains(ct, "application/json"):
		return kindJSON
	case strings.Contains(ct, "multipart/form-data"):
		return kindMultipart
	case strings.Contains(ct, "application/x-www-form-urlencoded"):
		return kindForm
	}
	return kindOther
}

// transformBody applies the body operations to a JSON, multipart or
// URL-encoded body, and reports whether the request goes on (false: it
// was answered because the body could not be read).
func (h *handler) transformBody(c *plugins.Context) bool {
	r := h.r
	if !r.remove.hasBody() && !r.rename.hasBody() && !r.replace.hasBody() && !r.add.hasBody() && !r.append.hasBody() {
		return true
	}
	ct, _ := c.Request.Header("Content-Type")
	k := contentKind(ct)
	if k == kindOther {
		return true
	}
	var body []byte
	if c.Request.ContentLength() != 0 {
		var err error
		if body, err = c.Request.Body(maxBody); err != nil {
			plugins.BodyFailed(c, err, msgBodyTooLarge)
			return false
		}
	}
	var out []byte
	var changed bool
	switch k {
	case kindJSON:
		out, changed = h.transformJSON(c.Request, body)
	case kindForm:
		a := parseArgs(string(body)).apply(r, c.Request, selectBody, len(body) > 0)
		out, changed = []byte(a.encode()), true
	case kindMultipart:
		out, changed = h.transformMultipart(c.Request, body, ct)
	}
	if changed {
		c.Upstream.SetBody(out)
	}
	return true
}

// transformJSON edits a JSON object body. A body that is not a JSON object
// is sent unchanged; an empty one becomes an object of the added fields.
func (h *handler) transformJSON(req plugins.Request, body []byte) ([]byte, bool) {
	r := h.r
	params := map[string]any{}
	if len(body) > 0 {
		d := json.NewDecoder(bytes.NewReader(body))
		d.UseNumber()
		if err := d.Decode(&params); err != nil || d.InputOffset() != int64(len(bytes.TrimRight(body, " \t\r\n"))) {
			return nil, false
		}
	}
	truthy := func(name string) bool {
		v, ok := params[name]
		return ok && v != false
	}
	if len(body) > 0 {
		for _, n := range r.remove.body {
			delete(params, n)
		}
		for _, p := range r.rename.bodyPairs {
			newName, _ := p.value.literal()
			if v, ok := params[p.name]; ok && v != false && newName != p.name {
				delete(params, p.name)
				params[newName] = v
			}
		}
		for _, p := range r.replace.bodyPairs {
			if truthy(p.name) {
				params[p.name] = p.value.render(req)
			}
		}
	}
	for _, p := range r.add.bodyPairs {
		if !truthy(p.name) {
			params[p.name] = p.value.render(req)
		}
	}
	for _, p := range r.append.bodyPairs {
		v := p.value.render(req)
		switch old := params[p.name].(type) {
		case string:
			params[p.name] = []any{old, v}
		case []any:
			params[p.name] = append(old, v)
		default:
			params[p.name] = []any{v}
		}
	}
	out, err := json.Marshal(params)
	if err != nil {
		return nil, false
	}
	return out, true
}

// formPart is one part of a multipart body.
type formPart struct {
	name   string
	header textproto.MIMEHeader
	data   []byte
}

// transformMultipart edits a multipart/form-data body as Kong does:
// rename, remove, replace and add fields (Kong has no append for
// multipart); file parts are kept as they are. A body that does not parse
// is sent unchanged.
func (h *handler) transformMultipart(req plugins.Request, body []byte, ct string) ([]byte, bool) {
	r := h.r
	_, params, err := mime.ParseMediaType(ct)
	boundary := params["boundary"]
	if err != nil || boundary == "" {
		return nil, false
	}
	var parts []formPart
	if len(body) > 0 {
		mr := multipart.NewReader(bytes.NewReader(body), boundary)
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, false
			}
			data, err := io.ReadAll(p)
			if err != nil {
				return nil, false
			}
			parts = append(parts, formPart{name: p.FormName(), header: p.Header, data: data})
		}
	}
	has := func(name string) bool {
		for _, p := range parts {
			if p.name == name {
				return true
			}
		}
		return false
	}
	drop := func(name string) {
		kept := parts[:0]
		for _, p := range parts {
			if p.name != name {
				kept = append(kept, p)
			}
		}
		parts = kept
	}
	simple := func(name, value string) formPart {
		hd := textproto.MIMEHeader{}
		hd.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": name}))
		return formPart{name: name, header: hd, data: []byte(value)}
	}
	if len(body) > 0 {
		for _, p := range r.rename.bodyPairs {
			newName, _ := p.value.literal()
			for i := range parts {
				if parts[i].name == p.name && newName != p.name {
					parts[i] = simple(newName, string(parts[i].data))
				}
			}
		}
		for _, n := range r.remove.body {
			drop(n)
		}
		for _, p := range r.replace.bodyPairs {
			if has(p.name) {
				drop(p.name)
				parts = append(parts, simple(p.name, p.value.render(req)))
			}
		}
	}
	for _, p := range r.add.bodyPairs {
		if !has(p.name) {
			parts = append(parts, simple(p.name, p.value.render(req)))
		}
	}
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.SetBoundary(boundary); err != nil {
		return nil, false
	}
	for _, p := range parts {
		pw, err := w.CreatePart(p.header)
		if err != nil {
			return nil, false
		}
		_, _ = pw.Write(p.data)
	}
	if err := w.Close(); err != nil {
		return nil, false
	}
	return buf.Bytes(), true
}
