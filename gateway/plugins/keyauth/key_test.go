package keyauth

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/plugintest"
)

func TestAppendWithout(t *testing.T) {
	tests := []struct{ q, name, want string }{
		{"apikey=s", "apikey", ""},
		{"a=1&apikey=s", "apikey", "a=1"},
		{"apikey=s&a=1", "apikey", "a=1"},
		{"a=%41&apikey=s&b=+", "apikey", "a=%41&b=+"},
		{"api%6Bey=s&a", "apikey", "a"},
		{"apikey&apikey=&a=1", "apikey", "a=1"},
		{"a=1&&b=2", "apikey", "a=1&&b=2"},
		{"%zz=1&apikey=s", "apikey", "%zz=1"},
		{"", "apikey", ""},
	}
	for _, tt := range tests {
		if got := string(appendWithout(nil, tt.q, tt.name)); got != tt.want {
			t.Errorf("appendWithout(%q, %q) = %q, want %q", tt.q, tt.name, got, tt.want)
		}
	}
}

// FuzzKeyInBody runs key-auth with key_in_body only on random bodies,
// content types and body limits through plugintest. It checks that the
// plugin never panics, answers only 401 or 413 (413 exactly when it had to
// read a body over the limit), and never changes the upstream body except
// to remove the key under hide_credentials, keeping every other form byte
// and every other JSON member.
func FuzzKeyInBody(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", []byte("apikey=secret&x=1"), uint16(1024), true)
	f.Add("application/x-www-form-urlencoded; charset=utf-8", []byte("a=%41&&apikey=secret&apikey=2"), uint16(10), true)
	f.Add("application/x-www-form-urlencoded", []byte("api%6Bey=secret;x"), uint16(1024), false)
	f.Add("application/json", []byte(`{"apikey":"secret","n":[1,{"a":"<"}]}`), uint16(1024), true)
	f.Add("application/json", []byte(`{"apikey":"secret","apikey":"x"}`), uint16(1024), true)
	f.Add("text/plain", []byte("apikey=secret"), uint16(0), true)
	f.Add("", []byte{}, uint16(0), false)
	creds := newCreds()
	f.Fuzz(func(t *testing.T, ctype string, body []byte, limit uint16, hide bool) {
		h, err := New(creds).Configure(json.RawMessage(`{"key_in_body":true,"key_in_header":false,"key_in_query":false,"hide_credentials":` + strconv.FormatBool(hide) + `}`))
		if err != nil {
			t.Fatal(err)
		}
		h.(*handler).maxBody = int64(limit)
		req := plugintest.New("POST", "/", map[string]string{"Content-Type": ctype}, body)
		c := req.Context()
		h.(plugins.Accessor).Access(c)

		media, _, _ := mime.ParseMediaType(ctype)
		searchable := len(body) > 0 && (media == mediaForm || media == mediaJSON)
		status, _, exited := c.Exited()
		switch {
		case searchable && len(body) > int(limit):
			if status != 413 {
				t.Fatalf("body of %d bytes over a limit of %d: status %d", len(body), limit, status)
			}
		case exited && status != 401:
			t.Fatalf("status %d", status)
		case !exited && c.Consumer == nil:
			t.Fatal("let through without a consumer")
		}
		up := req.Upstream().Body()
		if cl, ok := req.Upstream().Header("Content-Length"); ok && cl != strconv.Itoa(len(up)) {
			t.Fatalf("Content-Length %s for %d bytes", cl, len(up))
		}
		if bytes.Equal(up, body) {
			return
		}
		// As in Kong, hide_credentials removes a key as soon as it is
		// found, before it is looked up: a wrong key is hidden too.
		if !hide || status == 413 {
			t.Fatalf("body changed (status=%d, hide=%v): %q -> %q", status, hide, body, up)
		}
		switch media {
		case mediaForm:
			checkFormWithoutKey(t, string(body), string(up))
		case mediaJSON:
			checkJSONWithoutKey(t, body, up)
		default:
			t.Fatalf("body of type %q changed", ctype)
		}
	})
}

// checkFormWithoutKey checks that out is in with its "apikey" pairs
// removed and nothing else: every other pair, byte for byte, in order.
func checkFormWithoutKey(t *testing.T, in, out string) {
	t.Helper()
	var kept []string
	for _, pair := range strings.Split(in, "&") {
		k, _, _ := strings.Cut(pair, "=")
		if dk, err := url.QueryUnescape(k); err == nil && dk == "apikey" {
			continue
		}
		kept = append(kept, pair)
	}
	if want := strings.Join(kept, "&"); out != want {
		t.Fatalf("form %q became %q, want %q", in, out, want)
	}
}

// checkJSONWithoutKey checks that out has exactly in's members but
// "apikey".
func checkJSONWithoutKey(t *testing.T, in, out []byte) {
	t.Helper()
	var a, b map[string]any
	if json.Unmarshal(in, &a) != nil || json.Unmarshal(out, &b) != nil {
		t.Fatalf("JSON %q became %q", in, out)
	}
	delete(a, "apikey")
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if _, ok := b["apikey"]; ok || !bytes.Equal(ja, jb) {
		t.Fatalf("JSON %q became %q", in, out)
	}
}
