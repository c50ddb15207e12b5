package entity

import "encoding/json"

// Service is an upstream API, as Kong's services entity.
type Service struct {
	ID             string   `json:"id"`
	CreatedAt      int64    `json:"created_at"`
	UpdatedAt      int64    `json:"updated_at"`
	Name           *string  `json:"name"`
	Retries        int      `json:"retries"`
	Protocol       string   `json:"protocol"`
	Host           string   `json:"host"`
	Port           int      `json:"port"`
	Path           *string  `json:"path"`
	ConnectTimeout int      `json:"connect_timeout"`
	WriteTimeout   int      `json:"write_timeout"`
	ReadTimeout    int      `json:"read_timeout"`
	Tags           []string `json:"tags"`
	// ClientCertificate is the certificate presented to the upstream of
	// an https service.
	ClientCertificate *Ref `json:"client_certificate"`
	Enabled           bool `json:"enabled"`
}

// Certificate is a TLS certificate and its private key in PEM, with an
// optional alternative pair of another key type, as Kong's certificates
// entity. Services present it to their upstream (client_certificate).
type Certificate struct {
	ID        string   `json:"id"`
	CreatedAt int64    `json:"created_at"`
	UpdatedAt int64    `json:"updated_at"`
	Cert      string   `json:"cert"`
	Key       string   `json:"key"`
	CertAlt   *string  `json:"cert_alt"`
	KeyAlt    *string  `json:"key_alt"`
	Tags      []string `json:"tags"`
	// SNIs are the server names the certificate is for, accepted and
	// shown with the certificate as Kong's Admin API does (Kong keeps them
	// as snis entities; this node stores them on the certificate).
	SNIs []string `json:"snis"`
}

// Route decides which requests reach a service, as Kong's routes entity.
type Route struct {
	ID                      string              `json:"id"`
	CreatedAt               int64               `json:"created_at"`
	UpdatedAt               int64               `json:"updated_at"`
	Name                    *string             `json:"name"`
	Protocols               []string            `json:"protocols"`
	Methods                 []string            `json:"methods"`
	Hosts                   []string            `json:"hosts"`
	Paths                   []string            `json:"paths"`
	Headers                 map[string][]string `json:"headers"`
	HTTPSRedirectStatusCode int                 `json:"https_redirect_status_code"`
	RegexPriority           int                 `json:"regex_priority"`
	StripPath               bool                `json:"strip_path"`
	PathHandling            string              `json:"path_handling"`
	PreserveHost            bool                `json:"preserve_host"`
	RequestBuffering        bool                `json:"request_buffering"`
	ResponseBuffering       bool                `json:"response_buffering"`
	Snis                    []string            `json:"snis"`
	Sources                 []CIDRPort          `json:"sources"`
	Destinations            []CIDRPort          `json:"destinations"`
	Tags                    []string            `json:"tags"`
	Service                 *Ref                `json:"service"`
}

// CIDRPort is one element of a stream route's sources or destinations: an
// IP address or CIDR range, a port, or both (Kong's record {ip, port}).
type CIDRPort struct {
	IP   *string `json:"ip"`
	Port *int    `json:"port"`
}

// Consumer is an API user, as Kong's consumers entity.
type Consumer struct {
	ID        string   `json:"id"`
	CreatedAt int64    `json:"created_at"`
	UpdatedAt int64    `json:"updated_at"`
	Username  *string  `json:"username"`
	CustomID  *string  `json:"custom_id"`
	Tags      []string `json:"tags"`
}

// Plugin is a plugin instance, as Kong's plugins entity. Config holds the
// plugin's own configuration document after defaults are applied.
type Plugin struct {
	ID        string `json:"id"`
	CreatedAt int64  `json:"created_at"`
	UpdatedAt int64  `json:"updated_at"`
	Name      string `json:"name"`
	// InstanceName optionally names this instance, unique among plugins.
	InstanceName *string         `json:"instance_name"`
	Route        *Ref            `json:"route"`
	Service      *Ref            `json:"service"`
	Consumer     *Ref            `json:"consumer"`
	Config       json.RawMessage `json:"config"`
	Protocols    []string        `json:"protocols"`
	Enabled      bool            `json:"enabled"`
	Tags         []string        `json:"tags"`
}

// KeyAuthCredential is an API key owned by a consumer, as Kong's
// keyauth_credentials entity (endpoint /consumers/{c}/key-auth).
type KeyAuthCredential struct {
	ID        string   `json:"id"`
	CreatedAt int64    `json:"created_at"`
	Consumer  *Ref     `json:"consumer"`
	Key       string   `json:"key"`
	TTL       *int     `json:"ttl"`
	Tags      []string `json:"tags"`
	// ExpiresAt is the Unix time in milliseconds from which the credential
	// no longer authenticates, set by the Admin API from ttl when it is
	// written; 0 means never. Stored, but the Admin API shows the whole
	// seconds left as ttl instead.
	ExpiresAt int64 `json:"expires_at,omitempty"`
}

// BasicAuthCredential is a username and password owned by a consumer, as
// Kong's basicauth_credentials entity (endpoint /consumers/{c}/basic-auth).
// Password holds Kong's hash, never the password: see HashPassword.
type BasicAuthCredential struct {
	ID        string   `json:"id"`
	CreatedAt int64    `json:"created_at"`
	Consumer  *Ref     `json:"consumer"`
	Username  string   `json:"username"`
	Password  string   `json:"password"`
	Tags      []string `json:"tags"`
}

// JWTSecret is the key and secret (or public key) that verify a consumer's
// JSON Web Tokens, as Kong's jwt_secrets entity (endpoint
// /consumers/{c}/jwt). Key is the value of the token's key claim.
type JWTSecret struct {
	ID           string   `json:"id"`
	CreatedAt    int64    `json:"created_at"`
	Consumer     *Ref     `json:"consumer"`
	Key          string   `json:"key"`
	Secret       string   `json:"secret"`
	RSAPublicKey *string  `json:"rsa_public_key"`
	Algorithm    string   `json:"algorithm"`
	Tags         []string `json:"tags"`
}

// EntityKind implements Entity.
func (*Certificate) EntityKind() Kind { return KindCertificate }

// PrimaryKey implements Entity.
func (c *Certificate) PrimaryKey() string { return c.ID }

// Index implements Entity. A certificate has no unique or foreign field.
func (c *Certificate) Index() (map[string]string, map[string]string) { return nil, nil }

// EntityKind implements Entity.
func (*Service) EntityKind() Kind { return KindService }

// PrimaryKey implements Entity.
func (s *Service) PrimaryKey() string { return s.ID }

// Index implements Entity.
func (s *Service) Index() (map[string]string, map[string]string) {
	return map[string]string{"name": str(s.Name)}, map[string]string{"client_certificate": refID(s.ClientCertificate)}
}

// EntityKind implements Entity.
func (*Route) EntityKind() Kind { return KindRoute }

// PrimaryKey implements Entity.
func (r *Route) PrimaryKey() string { return r.ID }

// Index implements Entity.
func (r *Route) Index() (map[string]string, map[string]string) {
	return map[string]string{"name": str(r.Name)}, map[string]string{"service": refID(r.Service)}
}

// EntityKind implements Entity.
func (*Consumer) EntityKind() Kind { return KindConsumer }

// PrimaryKey implements Entity.
func (c *Consumer) PrimaryKey() string { return c.ID }

// Index implements Entity.
func (c *Consumer) Index() (map[string]string, map[string]string) {
	return map[string]string{"username": str(c.Username), "custom_id": str(c.CustomID)}, nil
}

// EntityKind implements Entity.
func (*Plugin) EntityKind() Kind { return KindPlugin }

// PrimaryKey implements Entity.
func (p *Plugin) PrimaryKey() string { return p.ID }

// Index implements Entity. A plugin is unique on (name, route, service,
// consumer), indexed as its cache key, and on its instance_name if set.
func (p *Plugin) Index() (map[string]string, map[string]string) {
	return map[string]string{"cache_key": p.CacheKey(), "instance_name": str(p.InstanceName)},
		map[string]string{"route": refID(p.Route), "service": refID(p.Service), "consumer": refID(p.Consumer)}
}

// CacheKey returns Kong's plugin cache key,
// "plugins:<name>:<route>:<service>:<consumer>".
func (p *Plugin) CacheKey() string {
	return "plugins:" + p.Name + ":" + refID(p.Route) + ":" + refID(p.Service) + ":" + refID(p.Consumer)
}

// EntityKind implements Entity.
func (*KeyAuthCredential) EntityKind() Kind { return KindKeyAuth }

// PrimaryKey implements Entity.
func (k *KeyAuthCredential) PrimaryKey() string { return k.ID }

// Index implements Entity.
func (k *KeyAuthCredential) Index() (map[string]string, map[string]string) {
	return map[string]string{"key": k.Key}, map[string]string{"consumer": refID(k.Consumer)}
}

// EntityKind implements Entity.
func (*BasicAuthCredential) EntityKind() Kind { return KindBasicAuth }

// PrimaryKey implements Entity.
func (b *BasicAuthCredential) PrimaryKey() string { return b.ID }

// Index implements Entity.
func (b *BasicAuthCredential) Index() (map[string]string, map[string]string) {
	return map[string]string{"username": b.Username}, map[string]string{"consumer": refID(b.Consumer)}
}

// EntityKind implements Entity.
func (*JWTSecret) EntityKind() Kind { return KindJWT }

// PrimaryKey implements Entity.
func (j *JWTSecret) PrimaryKey() string { return j.ID }

// Index implements Entity.
func (j *JWTSecret) Index() (map[string]string, map[string]string) {
	return map[string]string{"key": j.Key}, map[string]string{"consumer": refID(j.Consumer)}
}

var (
	_ Entity = (*Certificate)(nil)
	_ Entity = (*Service)(nil)
	_ Entity = (*Route)(nil)
	_ Entity = (*Consumer)(nil)
	_ Entity = (*Plugin)(nil)
	_ Entity = (*KeyAuthCredential)(nil)
	_ Entity = (*BasicAuthCredential)(nil)
	_ Entity = (*JWTSecret)(nil)
)
