package keyauth

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxBody bounds the body read when key_in_body is on.
const maxBody = 1 << 20

// findKey returns the first key found in r, searching each key name in the
// header, then the query, then the body. With hide_credentials it removes
// the key it found from r.
func (h *handler) findKey(r *http.Request) (string, bool) {
	var form url.Values
	for i, name := range h.KeyNames {
		if h.KeyInHeader {
			if v := r.Header[h.headerNames[i]]; len(v) > 0 && v[0] != "" {
				if h.HideCredentials {
					delete(r.Header, h.headerNames[i])
				}
				return v[0], true
			}
		}
		if h.KeyInQuery && r.URL.RawQuery != "" && strings.Contains(r.URL.RawQuery, name) {
			q := r.URL.Query()
			if v := q.Get(name); v != "" {
				if h.HideCredentials {
					q.Del(name)
					r.URL.RawQuery = q.Encode()
				}
				return v, true
			}
		}
		if h.KeyInBody {
			if form == nil {
				form = readBodyForm(r)
			}
			if v := form.Get(name); v != "" {
				if h.HideCredentials {
					hideInBody(r, form, name)
				}
				return v, true
			}
		}
	}
	return "", false
}

// readBodyForm reads a form or JSON object body into values and puts the
// body back for the upstream. An unreadable body yields no values.
func readBodyForm(r *http.Request) url.Values {
	form := url.Values{}
	if r.Body == nil || r.Body == http.NoBody {
		return form
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	_ = r.Body.Close()
	setBody(r, data)
	if err != nil {
		return form
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/x-www-form-urlencoded":
		if f, err := url.ParseQuery(string(data)); err == nil {
			form = f
		}
	case "application/json":
		var obj map[string]any
		if json.Unmarshal(data, &obj) == nil {
			for k, v := range obj {
				if s, ok := v.(string); ok {
					form.Set(k, s)
				}
			}
		}
	}
	return form
}

// hideInBody rewrites a form body without the name parameter. JSON bodies
// are rewritten without that member.
func hideInBody(r *http.Request, form url.Values, name string) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	form.Del(name)
	switch mt {
	case "application/x-www-form-urlencoded":
		setBody(r, []byte(form.Encode()))
	case "application/json":
		data, _ := io.ReadAll(r.Body)
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			setBody(r, data)
			return
		}
		delete(obj, name)
		out, _ := json.Marshal(obj)
		setBody(r, out)
	}
}

func setBody(r *http.Request, data []byte) {
	r.Body = io.NopCloser(bytes.NewReader(data))
	r.ContentLength = int64(len(data))
	r.Header.Set("Content-Length", strconv.Itoa(len(data)))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}
