package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"math/big"
	"slices"
	"strings"
)

// token is a parsed JSON Web Token (JWS compact form), not yet verified.
type token struct {
	// signed is "<header>.<claims>" as sent: what the signature covers.
	signed    string
	header    map[string]any
	claims    map[string]any
	signature []byte
	alg       string
}

// Kong's reasons for a token it cannot parse ("Bad token; <reason>").
var (
	errInvalidJSON      = errors.New("invalid JSON")
	errInvalidAlg       = errors.New("invalid alg")
	errInvalidClaims    = errors.New("invalid claims")
	errInvalidSignature = errors.New("invalid signature")
)

// algorithms are the values of a token's "alg" Kong verifies.
var algorithms = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
	"ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}

// parseToken splits and decodes s as Kong's jwt_parser: three parts
// separated by '.', the last one taking any further dots; header and
// claims base64url JSON (padding optional), the header's alg one of
// algorithms, the claims not null.
func parseToken(s string) (*token, error) {
	h64, rest, ok := strings.Cut(s, ".")
	if !ok {
		return nil, errInvalidJSON
	}
	c64, s64, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, errInvalidJSON
	}
	t := &token{signed: s[:len(h64)+1+len(c64)]}
	hdr, err := decodeSegment(h64)
	if err != nil || json.Unmarshal(hdr, &t.header) != nil || t.header == nil {
		return nil, errInvalidJSON
	}
	var claims any
	cl, err := decodeSegment(c64)
	if err != nil || json.Unmarshal(cl, &claims) != nil {
		return nil, errInvalidJSON
	}
	if t.signature, err = decodeSegment(s64); err != nil {
		return nil, errInvalidJSON
	}
	t.alg, _ = t.header["alg"].(string)
	if !slices.Contains(algorithms, t.alg) {
		return nil, errInvalidAlg
	}
	if claims == nil {
		return nil, errInvalidClaims
	}
	// Claims that are not an object (an array, a number) carry no claim,
	// as in Kong.
	t.claims, _ = claims.(map[string]any)
	return t, nil
}

// decodeSegment decodes base64url with or without padding.
func decodeSegment(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// claim returns the value of the claim name, or of the header member name
// when the claims have none (Kong's lookup of the key claim).
func (t *token) claim(name string) (any, bool) {
	if v, ok := t.claims[name]; ok && v != nil {
		return v, true
	}
	v, ok := t.header[name]
	return v, ok && v != nil
}

// hashes maps the size in an algorithm's name to its hash.
func hashOf(alg string) (crypto.Hash, func() hash.Hash) {
	switch alg[len(alg)-3:] {
	case "384":
		return crypto.SHA384, sha512.New384
	case "512":
		return crypto.SHA512, sha512.New
	}
	return crypto.SHA256, sha256.New
}

// verifyHMAC reports whether t is signed with secret by its HS* alg.
func (t *token) verifyHMAC(secret []byte) bool {
	_, newHash := hashOf(t.alg)
	m := hmac.New(newHash, secret)
	m.Write([]byte(t.signed))
	return hmac.Equal(m.Sum(nil), t.signature)
}

// verifyPublic reports whether t is signed by the private key of pub with
// its RS*, PS*, ES* or EdDSA alg. A key of another type does not verify.
func (t *token) verifyPublic(pub crypto.PublicKey) bool {
	if t.alg == "EdDSA" {
		k, ok := pub.(ed25519.PublicKey)
		return ok && ed25519.Verify(k, []byte(t.signed), t.signature)
	}
	h, newHash := hashOf(t.alg)
	d := newHash()
	d.Write([]byte(t.signed))
	digest := d.Sum(nil)
	switch t.alg[:2] {
	case "RS":
		k, ok := pub.(*rsa.PublicKey)
		return ok && rsa.VerifyPKCS1v15(k, h, digest, t.signature) == nil
	case "PS":
		k, ok := pub.(*rsa.PublicKey)
		return ok && rsa.VerifyPSS(k, h, digest, t.signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
	case "ES":
		k, ok := pub.(*ecdsa.PublicKey)
		return ok && verifyECDSA(k, t.alg, digest, t.signature)
	}
	return false
}

// esSizes is the length of r and of s in an ES* signature (RFC 7518 3.4).
var esSizes = map[string]int{"ES256": 32, "ES384": 48, "ES512": 66}

// verifyECDSA checks a JWS ECDSA signature: r and s concatenated, each of
// the curve's fixed size.
func verifyECDSA(k *ecdsa.PublicKey, alg string, digest, sig []byte) bool {
	n := esSizes[alg]
	if len(sig) != 2*n {
		return false
	}
	r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
	return ecdsa.Verify(k, digest, r, s)
}

// number returns a JSON number claim as a float64 (encoding/json decodes
// every number so).
func number(v any) (float64, bool) {
	f, ok := v.(float64)
	return f, ok
}
