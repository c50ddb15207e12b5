package keyauth

import (
	"encoding/json"
	"mime"
	"net/url"
	"strings"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// maxBody is the longest body key_in_body reads to find a key: 1 MiB. A
// longer body is answered 413 (msgBodyTooLarge) rather than searched in
// part or cut; it is never forwarded truncated.
const maxBody = 1 << 20

// Body media types key_in_body searches.
const (
	mediaForm = "application/x-www-form-urlencoded"
	mediaJSON = "application/json"
)

// findKey returns the first key found in c's request, searching each key
// name in the header, then the query, then the body; "" when there is
// none. With hide_credentials it removes the key it found from the
// upstream request. An error is the body's, from Request.Body.
func (h *handler) findKey(c *plugins.Context) (string, error) {
	var body *bodyParams
	for _, name := range h.KeyNames {
		if h.KeyInHeader {
			if v, ok := c.Request.Header(name); ok && v != "" {
				if h.HideCredentials {
					c.Upstream.ClearHeader(name)
				}
				return v, nil
			}
		}
		if h.KeyInQuery {
			if v, ok := c.Request.Query(name); ok && v != "" {
				if h.HideCredentials {
					c.Upstream.SetRawQuery(string(appendWithout(nil, c.Request.RawQuery(), name)))
				}
				return v, nil
			}
		}
		if h.KeyInBody {
			if body == nil {
				var err error
				if body, err = h.readBody(c); err != nil {
					return "", err
				}
			}
			if v := body.get(name); v != "" {
				if h.HideCredentials {
					body.hide(c, name)
				}
				return v, nil
			}
		}
	}
	return "", nil
}

// bodyParams is a form or JSON object body. The zero value has no
// parameters.
type bodyParams struct {
	media string
	data  []byte
	form  url.Values
	obj   map[string]json.RawMessage
}

// readBody reads and parses c's body when its media type is one that can
// hold a key. A body without a form or a JSON object has no parameters.
func (h *handler) readBody(c *plugins.Context) (*bodyParams, error) {
	b := &bodyParams{}
	if c.Request.ContentLength() == 0 {
		return b, nil
	}
	ctype, _ := c.Request.Header("Content-Type")
	media, _, _ := mime.ParseMediaType(ctype)
	if media != mediaForm && media != mediaJSON {
		return b, nil // no key can be there: leave the body unread
	}
	data, err := c.Request.Body(h.maxBody)
	if err != nil {
		return nil, err
	}
	b.media, b.data = media, data
	switch media {
	case mediaForm:
		if f, err := url.ParseQuery(string(data)); err == nil {
			b.form = f
		}
	case mediaJSON:
		if json.Unmarshal(data, &b.obj) != nil {
			b.obj = nil // not an object
		}
	}
	return b, nil
}

// get returns the value of parameter name: a form field, or a JSON member
// whose value is a string.
func (b *bodyParams) get(name string) string {
	if b.media == mediaJSON {
		var s string
		if raw, ok := b.obj[name]; ok && json.Unmarshal(raw, &s) == nil {
			return s
		}
		return ""
	}
	return b.form.Get(name)
}

// hide sends the body upstream without parameter name. A form keeps every
// other byte; a JSON object is encoded again without that member.
func (b *bodyParams) hide(c *plugins.Context, name string) {
	switch b.media {
	case mediaForm:
		c.Upstream.SetBody(appendWithout(make([]byte, 0, len(b.data)), string(b.data), name))
	case mediaJSON:
		delete(b.obj, name)
		if out, err := json.Marshal(b.obj); err == nil {
			c.Upstream.SetBody(out)
		}
	}
}

// appendWithout appends the query or form string q to dst without the
// parameters named name; the others are kept byte for byte, in order.
func appendWithout(dst []byte, q, name string) []byte {
	first := true
	for pair := range strings.SplitSeq(q, "&") {
		key, _, _ := strings.Cut(pair, "=")
		if k, err := url.QueryUnescape(key); key == name || err == nil && k == name {
			continue
		}
		if !first {
			dst = append(dst, '&')
		}
		dst, first = append(dst, pair...), false
	}
	return dst
}
