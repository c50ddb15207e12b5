package jwt

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/plugintest"
	"github.com/sluice-gw/sluice/gateway/store"
)

// memCredentials is an in-memory Credentials.
type memCredentials struct {
	mu        sync.Mutex
	secrets   map[string]*entity.JWTSecret
	consumers map[string]*entity.Consumer
	err       error
}

func (m *memCredentials) JWTSecret(_ context.Context, key string) (*entity.JWTSecret, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.secrets[key], m.err
}

func (m *memCredentials) Consumer(_ context.Context, id string) (*entity.Consumer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.consumers[id], m.err
}

func ptr(s string) *string { return &s }

// keys are the test's private keys, made once.
type keys struct {
	rsa, rsa2 *rsa.PrivateKey
	ec256     *ecdsa.PrivateKey
	ec384     *ecdsa.PrivateKey
	ec521     *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
}

var testKeys = sync.OnceValue(func() keys {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var k keys
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.ec256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	k.ec521, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	must(err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return k
})

func pemOf(pub crypto.PublicKey) *string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	s := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return &s
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// sign returns a token of header and claims (JSON) signed by alg with key
// (a []byte secret or a private key).
func sign(t testing.TB, alg string, key any, header, claims string) string {
	t.Helper()
	signed := b64([]byte(header)) + "." + b64([]byte(claims))
	h, newHash := hashOf(alg)
	var sig []byte
	var err error
	switch {
	case alg == "EdDSA":
		sig = ed25519.Sign(key.(ed25519.PrivateKey), []byte(signed))
	case strings.HasPrefix(alg, "HS"):
		m := hmac.New(newHash, key.([]byte))
		m.Write([]byte(signed))
		sig = m.Sum(nil)
	default:
		d := newHash()
		d.Write([]byte(signed))
		digest := d.Sum(nil)
		switch alg[:2] {
		case "RS":
			sig, err = rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), h, digest)
		case "PS":
			sig, err = rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), h, digest, nil)
		case "ES":
			k := key.(*ecdsa.PrivateKey)
			r, s, e := ecdsa.Sign(rand.Reader, k, digest)
			n := esSizes[alg]
			sig = make([]byte, 2*n)
			r.FillBytes(sig[:n])
			s.FillBytes(sig[n:])
			err = e
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + b64(sig)
}

// tamper replaces the claims of tok, keeping its signature.
func tamper(tok, claims string) string {
	parts := strings.Split(tok, ".")
	parts[1] = b64([]byte(claims))
	return strings.Join(parts, ".")
}

// now is the tests' clock.
var now = time.Unix(1_800_000_000, 0)

const aliceID = "11111111-1111-4111-8111-111111111111"

func newCreds() *memCredentials {
	k := testKeys()
	secret := func(key, alg, secret string, pub *string) *entity.JWTSecret {
		return &entity.JWTSecret{ID: "id-" + key, Key: key, Algorithm: alg, Secret: secret, RSAPublicKey: pub,
			Consumer: &entity.Ref{ID: aliceID}}
	}
	m := &memCredentials{
		secrets: map[string]*entity.JWTSecret{
			"hs256":  secret("hs256", "HS256", "s3cr3t", nil),
			"hs384":  secret("hs384", "HS384", "s3cr3t", nil),
			"hs512":  secret("hs512", "HS512", "s3cr3t", nil),
			"b64":    secret("b64", "HS256", b64([]byte("raw\x00secret")), nil),
			"b64std": secret("b64std", "HS256", "cmF3+/8=", nil), // standard base64: Kong decodes base64url only
			"rs256":  secret("rs256", "RS256", "unused", pemOf(&k.rsa.PublicKey)),
			"rs384":  secret("rs384", "RS384", "unused", pemOf(&k.rsa.PublicKey)),
			"rs512":  secret("rs512", "RS512", "unused", pemOf(&k.rsa.PublicKey)),
			"ps256":  secret("ps256", "PS256", "unused", pemOf(&k.rsa.PublicKey)),
			"es256":  secret("es256", "ES256", "unused", pemOf(&k.ec256.PublicKey)),
			"es384":  secret("es384", "ES384", "unused", pemOf(&k.ec384.PublicKey)),
			"es512":  secret("es512", "ES512", "unused", pemOf(&k.ec521.PublicKey)),
			"eddsa":  secret("eddsa", "EdDSA", "unused", pemOf(k.ed.Public())),
			"nokey":  secret("nokey", "RS256", "unused", nil),
			"ec-rs":  secret("ec-rs", "RS256", "unused", pemOf(&k.ec256.PublicKey)),
			"orphan": {ID: "id-orphan", Key: "orphan", Algorithm: "HS256", Secret: "s3cr3t", Consumer: &entity.Ref{ID: "ghost"}},
			"123":    secret("123", "HS256", "s3cr3t", nil),
		},
		consumers: map[string]*entity.Consumer{
			aliceID: {ID: aliceID, Username: ptr("alice"), CustomID: ptr("a-1")},
			"anon":  {ID: "anon", Username: ptr("anonymous")},
		},
	}
	return m
}

func TestConfig(t *testing.T) {
	reg := plugins.NewRegistry(New(nil))
	const defaults = `{"uri_param_names":["jwt"],"cookie_names":[],"key_claim_name":"iss","secret_is_base64":false,` +
		`"claims_to_verify":null,"anonymous":null,"run_on_preflight":true,"maximum_expiration":0,` +
		`"header_names":["authorization"],"realm":null}`
	tests := []struct {
		name, config, want string
		field, msg         string
	}{
		{name: "defaults", config: `{}`, want: defaults},
		{name: "claims", config: `{"claims_to_verify":["exp","nbf"],"maximum_expiration":60}`,
			want: strings.Replace(strings.Replace(defaults, `"claims_to_verify":null`, `"claims_to_verify":["exp","nbf"]`, 1),
				`"maximum_expiration":0`, `"maximum_expiration":60`, 1)},
		{name: "unknown claim", config: `{"claims_to_verify":["iat"]}`, field: "claims_to_verify", msg: "expected one of: exp, nbf"},
		{name: "maximum_expiration needs exp", config: `{"maximum_expiration":60}`, field: "claims_to_verify", msg: "expected to contain: exp"},
		{name: "maximum_expiration range", config: `{"maximum_expiration":31536001,"claims_to_verify":["exp"]}`,
			field: "maximum_expiration", msg: "value should be between 0 and 31536000"},
		{name: "wrong type", config: `{"uri_param_names":"jwt"}`, field: "uri_param_names", msg: "expected a set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fields, err := reg.Validate(Name, json.RawMessage(tt.config))
			if tt.field != "" {
				if err == nil || fields[tt.field] != tt.msg {
					t.Fatalf("fields = %v (%v), want %s: %s", fields, err, tt.field, tt.msg)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %s, %v\nwant %s", got, err, tt.want)
			}
		})
	}
}

func TestAccess(t *testing.T) {
	k := testKeys()
	secret := []byte("s3cr3t")
	hs := func(claims string) string { return sign(t, "HS256", secret, `{"typ":"JWT","alg":"HS256"}`, claims) }
	valid := hs(`{"iss":"hs256"}`)
	const invalid = `Bearer error="invalid_token"`
	msg := func(m string) string { return `{"message":"` + m + `"}` }
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	exp := func(d time.Duration) string { return fmt.Sprint(now.Add(d).Unix()) }
	type test struct {
		name, config, method, target string
		header                       map[string]string
		failLookup                   error
		wantStatus                   int // 0: passed on
		wantBody                     string
		wantChallenge                string // "" means none
		wantCred                     string // X-Credential-Identifier when passed on
	}
	tests := []test{
		{name: "no token", config: `{}`, wantStatus: 401, wantBody: msg("Unauthorized"), wantChallenge: "Bearer"},
		{name: "realm", config: `{"realm":"api"}`, wantStatus: 401, wantBody: msg("Unauthorized"), wantChallenge: `Bearer realm="api"`},
		{name: "realm on a bad token", config: `{"realm":"api"}`, target: "/?jwt=x", wantStatus: 401,
			wantBody: msg("Bad token; invalid JSON"), wantChallenge: `Bearer realm="api" error="invalid_token"`},
		{name: "query", config: `{}`, target: "/?jwt=" + valid, wantCred: "hs256"},
		{name: "bearer header", config: `{}`, header: bearer(valid), wantCred: "hs256"},
		{name: "lowercase bearer", config: `{}`, header: map[string]string{"Authorization": "bearer " + valid}, wantCred: "hs256"},
		{name: "not bearer", config: `{}`, header: map[string]string{"Authorization": "Basic " + valid}, wantStatus: 401,
			wantBody: msg("Unauthorized"), wantChallenge: "Bearer"},
		{name: "custom header", config: `{"header_names":["x-token"]}`, header: map[string]string{"X-Token": "Bearer " + valid}, wantCred: "hs256"},
		{name: "cookie", config: `{"cookie_names":["tok"]}`, header: map[string]string{"Cookie": "a=b; tok=" + valid}, wantCred: "hs256"},
		{name: "cookie not searched by default", config: `{}`, header: map[string]string{"Cookie": "jwt=" + valid}, wantStatus: 401,
			wantBody: msg("Unauthorized"), wantChallenge: "Bearer"},
		{name: "same token twice", config: `{}`, target: "/?jwt=" + valid, header: bearer(valid), wantCred: "hs256"},
		{name: "multiple tokens", config: `{}`, target: "/?jwt=" + valid, header: bearer(hs(`{"iss":"hs256","a":1}`)),
			wantStatus: 401, wantBody: msg("Multiple tokens provided"), wantChallenge: invalid},
		{name: "not a token", config: `{}`, header: bearer("abc"), wantStatus: 401, wantBody: msg("Bad token; invalid JSON"), wantChallenge: invalid},
		{name: "two parts", config: `{}`, header: bearer(b64([]byte(`{"alg":"HS256"}`)) + "." + b64([]byte(`{}`))),
			wantStatus: 401, wantBody: msg("Bad token; invalid JSON"), wantChallenge: invalid},
		{name: "alg none", config: `{}`, header: bearer(b64([]byte(`{"alg":"none"}`)) + "." + b64([]byte(`{"iss":"hs256"}`)) + "."),
			wantStatus: 401, wantBody: msg("Bad token; invalid alg"), wantChallenge: invalid},
		{name: "null claims", config: `{}`, header: bearer(hs(`null`)), wantStatus: 401, wantBody: msg("Bad token; invalid claims"), wantChallenge: invalid},
		{name: "no key claim", config: `{}`, header: bearer(hs(`{"sub":"x"}`)), wantStatus: 401,
			wantBody: msg("No mandatory 'iss' in claims"), wantChallenge: invalid},
		{name: "empty key claim", config: `{}`, header: bearer(hs(`{"iss":""}`)), wantStatus: 401,
			wantBody: msg("Invalid 'iss' in claims"), wantChallenge: invalid},
		{name: "number key claim", config: `{}`, header: bearer(hs(`{"iss":123}`)), wantCred: "123"},
		{name: "key in the header", config: `{}`, header: bearer(sign(t, "HS256", secret, `{"alg":"HS256","iss":"hs256"}`, `{}`)), wantCred: "hs256"},
		{name: "key_claim_name", config: `{"key_claim_name":"kid"}`, header: bearer(sign(t, "HS256", secret, `{"alg":"HS256","kid":"hs256"}`, `{"iss":"x"}`)),
			wantCred: "hs256"},
		{name: "key_claim_name in messages", config: `{"key_claim_name":"kid"}`, header: bearer(valid), wantStatus: 401,
			wantBody: msg("No mandatory 'kid' in claims"), wantChallenge: invalid},
		{name: "unknown key", config: `{}`, header: bearer(hs(`{"iss":"nope"}`)), wantStatus: 401,
			wantBody: msg("No credentials found for given 'iss'"), wantChallenge: invalid},
		{name: "wrong algorithm", config: `{}`, header: bearer(sign(t, "HS512", secret, `{"alg":"HS512"}`, `{"iss":"hs256"}`)),
			wantStatus: 401, wantBody: msg("Invalid algorithm"), wantChallenge: invalid},
		{name: "HS token for an RS secret", config: `{}`, header: bearer(hs(`{"iss":"rs256"}`)),
			wantStatus: 401, wantBody: msg("Invalid algorithm"), wantChallenge: invalid},
		{name: "bad signature", config: `{}`, header: bearer(sign(t, "HS256", []byte("other"), `{"alg":"HS256"}`, `{"iss":"hs256"}`)),
			wantStatus: 401, wantBody: msg("Invalid signature"), wantChallenge: invalid},
		{name: "tampered claims", config: `{}`, header: bearer(tamper(hs(`{"iss":"hs256","admin":false}`), `{"iss":"hs256","admin":true}`)),
			wantStatus: 401, wantChallenge: invalid, wantBody: msg("Invalid signature")},
		{name: "garbage after the signature", config: `{}`, header: bearer(valid + ".x"),
			wantStatus: 401, wantChallenge: invalid, wantBody: msg("Bad token; invalid JSON")},
		{name: "HS384", config: `{}`, header: bearer(sign(t, "HS384", secret, `{"alg":"HS384"}`, `{"iss":"hs384"}`)), wantCred: "hs384"},
		{name: "HS512", config: `{}`, header: bearer(sign(t, "HS512", secret, `{"alg":"HS512"}`, `{"iss":"hs512"}`)), wantCred: "hs512"},
		{name: "secret_is_base64", config: `{"secret_is_base64":true}`,
			header: bearer(sign(t, "HS256", []byte("raw\x00secret"), `{"alg":"HS256"}`, `{"iss":"b64"}`)), wantCred: "b64"},
		{name: "secret_is_base64, not base64url", config: `{"secret_is_base64":true}`, header: bearer(hs(`{"iss":"b64std"}`)),
			wantStatus: 401, wantBody: msg("Invalid key/secret"), wantChallenge: invalid},
		{name: "secret_is_base64 off", config: `{}`,
			header:     bearer(sign(t, "HS256", []byte("raw\x00secret"), `{"alg":"HS256"}`, `{"iss":"b64"}`)),
			wantStatus: 401, wantBody: msg("Invalid signature"), wantChallenge: invalid},
		{name: "RS256", config: `{}`, header: bearer(sign(t, "RS256", k.rsa, `{"alg":"RS256"}`, `{"iss":"rs256"}`)), wantCred: "rs256"},
		{name: "RS256 by another key", config: `{}`, header: bearer(sign(t, "RS256", k.rsa2, `{"alg":"RS256"}`, `{"iss":"rs256"}`)),
			wantStatus: 401, wantBody: msg("Invalid signature"), wantChallenge: invalid},
		{name: "RS384", config: `{}`, header: bearer(sign(t, "RS384", k.rsa, `{"alg":"RS384"}`, `{"iss":"rs384"}`)), wantCred: "rs384"},
		{name: "RS512", config: `{}`, header: bearer(sign(t, "RS512", k.rsa, `{"alg":"RS512"}`, `{"iss":"rs512"}`)), wantCred: "rs512"},
		{name: "PS256", config: `{}`, header: bearer(sign(t, "PS256", k.rsa, `{"alg":"PS256"}`, `{"iss":"ps256"}`)), wantCred: "ps256"},
		{name: "ES256", config: `{}`, header: bearer(sign(t, "ES256", k.ec256, `{"alg":"ES256"}`, `{"iss":"es256"}`)), wantCred: "es256"},
		{name: "ES384", config: `{}`, header: bearer(sign(t, "ES384", k.ec384, `{"alg":"ES384"}`, `{"iss":"es384"}`)), wantCred: "es384"},
		{name: "ES512", config: `{}`, header: bearer(sign(t, "ES512", k.ec521, `{"alg":"ES512"}`, `{"iss":"es512"}`)), wantCred: "es512"},
		{name: "EdDSA", config: `{}`, header: bearer(sign(t, "EdDSA", k.ed, `{"alg":"EdDSA"}`, `{"iss":"eddsa"}`)), wantCred: "eddsa"},
		{name: "ES256 signature of the wrong size", config: `{}`,
			header:     bearer(longerSignature(sign(t, "ES256", k.ec256, `{"alg":"ES256"}`, `{"iss":"es256"}`))),
			wantStatus: 401, wantBody: msg("Invalid signature"), wantChallenge: invalid},
		{name: "ES256 signed by an RSA key's owner", config: `{}`, header: bearer(sign(t, "RS256", k.rsa, `{"alg":"RS256"}`, `{"iss":"ec-rs"}`)),
			wantStatus: 401, wantBody: msg("Invalid signature"), wantChallenge: invalid},
		{name: "RS secret without a public key", config: `{}`, header: bearer(sign(t, "RS256", k.rsa, `{"alg":"RS256"}`, `{"iss":"nokey"}`)),
			wantStatus: 401, wantBody: msg("Invalid key/secret"), wantChallenge: invalid},
		{name: "exp in the future", config: `{"claims_to_verify":["exp"]}`, header: bearer(hs(`{"iss":"hs256","exp":` + exp(time.Minute) + `}`)), wantCred: "hs256"},
		{name: "expired", config: `{"claims_to_verify":["exp"]}`, header: bearer(hs(`{"iss":"hs256","exp":` + exp(0) + `}`)),
			wantStatus: 401, wantBody: `{"exp":"token expired"}`, wantChallenge: invalid},
		{name: "expired but not verified", config: `{}`, header: bearer(hs(`{"iss":"hs256","exp":` + exp(-time.Hour) + `}`)), wantCred: "hs256"},
		{name: "exp not a number", config: `{"claims_to_verify":["exp"]}`, header: bearer(hs(`{"iss":"hs256","exp":"tomorrow"}`)),
			wantStatus: 401, wantBody: `{"exp":"must be a number"}`, wantChallenge: invalid},
		{name: "exp missing", config: `{"claims_to_verify":["exp"]}`, header: bearer(valid),
			wantStatus: 401, wantBody: `{"exp":"must be a number"}`, wantChallenge: invalid},
		{name: "nbf in the future", config: `{"claims_to_verify":["nbf"]}`, header: bearer(hs(`{"iss":"hs256","nbf":` + exp(time.Second) + `}`)),
			wantStatus: 401, wantBody: `{"nbf":"token not valid yet"}`, wantChallenge: invalid},
		{name: "nbf now", config: `{"claims_to_verify":["nbf"]}`, header: bearer(hs(`{"iss":"hs256","nbf":` + exp(0) + `}`)), wantCred: "hs256"},
		{name: "both claims fail", config: `{"claims_to_verify":["exp","nbf"]}`,
			header:     bearer(hs(`{"iss":"hs256","exp":` + exp(-time.Second) + `,"nbf":` + exp(time.Hour) + `}`)),
			wantStatus: 401, wantBody: `{"exp":"token expired","nbf":"token not valid yet"}`, wantChallenge: invalid},
		{name: "maximum_expiration", config: `{"claims_to_verify":["exp"],"maximum_expiration":60}`,
			header: bearer(hs(`{"iss":"hs256","exp":` + exp(time.Minute) + `}`)), wantCred: "hs256"},
		{name: "over maximum_expiration", config: `{"claims_to_verify":["exp"],"maximum_expiration":60}`,
			header:     bearer(hs(`{"iss":"hs256","exp":` + exp(61*time.Second) + `}`)),
			wantStatus: 401, wantBody: `{"exp":"exceeds maximum allowed expiration"}`, wantChallenge: invalid},
		{name: "consumer gone", config: `{}`, header: bearer(hs(`{"iss":"orphan"}`)), wantStatus: 401,
			wantBody: msg("Could not find consumer for 'iss=orphan'")},
		{name: "anonymous", config: `{"anonymous":"anon"}`, header: bearer("abc")},
		{name: "missing anonymous", config: `{"anonymous":"nobody"}`, wantStatus: 500,
			wantBody: msg("anonymous consumer nobody is configured but doesn't exist")},
		{name: "preflight authenticated", config: `{}`, method: "OPTIONS", wantStatus: 401, wantBody: msg("Unauthorized"), wantChallenge: "Bearer"},
		{name: "preflight skipped", config: `{"run_on_preflight":false}`, method: "OPTIONS"},
		{name: "lookup error", config: `{}`, header: bearer(valid), failLookup: errors.New("bad row"), wantStatus: 500,
			wantBody: msg("An unexpected error occurred")},
		{name: "datastore unavailable", config: `{}`, header: bearer(valid), failLookup: fmt.Errorf("cache: %w", store.ErrUnavailable),
			wantStatus: 503, wantBody: msg("The database is unreachable; try again later")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			creds := newCreds()
			creds.err = tt.failLookup
			p := New(creds)
			p.now = func() time.Time { return now }
			set, err := plugintest.NewSet(p, tt.config)
			if err != nil {
				t.Fatal(err)
			}
			target := tt.target
			if target == "" {
				target = "/"
			}
			req := plugintest.New(tt.method, target, tt.header, nil)
			c := req.Context()
			plugintest.Run(set, c)
			resp, up := req.Response(), req.Upstream()
			if tt.wantStatus != 0 {
				ctype, _ := resp.Header("Content-Type")
				if req.Forwarded() || resp.Status() != tt.wantStatus || strings.TrimSpace(string(resp.Body())) != tt.wantBody || ctype != "application/json; charset=utf-8" {
					t.Fatalf("got forwarded=%v %d %s (%s)", req.Forwarded(), resp.Status(), resp.Body(), ctype)
				}
				if auth, _ := resp.Header("WWW-Authenticate"); auth != tt.wantChallenge {
					t.Fatalf("WWW-Authenticate = %q, want %q", auth, tt.wantChallenge)
				}
				if c.Consumer != nil {
					t.Fatalf("consumer %v authenticated on a %d", c.Consumer, tt.wantStatus)
				}
				return
			}
			if !req.Forwarded() {
				t.Fatalf("stopped: %d %s", resp.Status(), resp.Body())
			}
			id, _ := up.Header("X-Consumer-Id")
			cred, _ := up.Header("X-Credential-Identifier")
			anon, _ := up.Header("X-Anonymous-Consumer")
			switch {
			case tt.method == "OPTIONS":
				if c.Consumer != nil || id != "" {
					t.Fatalf("preflight authenticated %v", c.Consumer)
				}
			case tt.wantCred == "": // anonymous
				if id != "anon" || cred != "" || anon != "true" || c.Credential != nil || !c.Anonymous {
					t.Fatalf("anonymous: upstream %q %q %q, context %v %v", id, cred, anon, c.Credential, c.Anonymous)
				}
			default:
				user, _ := up.Header("X-Consumer-Username")
				custom, _ := up.Header("X-Consumer-Custom-Id")
				if id != aliceID || user != "alice" || custom != "a-1" || cred != tt.wantCred || anon != "" {
					t.Fatalf("upstream consumer %q %q %q credential %q anonymous %q", id, user, custom, cred, anon)
				}
				if c.Consumer == nil || c.Consumer.ID != aliceID || c.Anonymous || c.Credential.(*entity.JWTSecret).Key != tt.wantCred {
					t.Fatalf("context %+v %+v %v", c.Consumer, c.Credential, c.Anonymous)
				}
			}
		})
	}
}

// TestLogicalOR checks that with anonymous set, a request an earlier auth
// plugin authenticated is left alone, and without it jwt still requires a
// token.
func TestLogicalOR(t *testing.T) {
	bob := &entity.Consumer{ID: "bob"}
	other := &entity.KeyAuthCredential{ID: "key-1", Consumer: &entity.Ref{ID: "bob"}}
	for _, tt := range []struct {
		config     string
		wantStatus int
	}{{`{"anonymous":"anon"}`, 0}, {`{}`, 401}} {
		set, err := plugintest.NewSet(New(newCreds()), tt.config)
		if err != nil {
			t.Fatal(err)
		}
		req := plugintest.New("GET", "/", nil, nil)
		c := req.Context()
		c.Authenticate(bob, other, false)
		plugintest.Run(set, c)
		if status, _, _ := c.Exited(); status != tt.wantStatus || tt.wantStatus == 0 && c.Consumer != bob {
			t.Fatalf("config %s: exit %d consumer %v, want %d", tt.config, status, c.Consumer, tt.wantStatus)
		}
	}
}

// longerSignature returns token with three zero bytes appended to its
// signature, still valid base64url: a signature of the wrong size.
func longerSignature(token string) string {
	i := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil {
		panic(err)
	}
	return token[:i+1] + base64.RawURLEncoding.EncodeToString(append(sig, 0, 0, 0))
}
