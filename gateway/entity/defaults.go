package entity

import "encoding/json"

// PluginProtocols is the default of a plugin's protocols field, as Kong's.
// Callers must not modify it.
var PluginProtocols = []string{"grpc", "grpcs", "http", "https"}

// RouteProtocols are the protocols a route may name, as Kong's. Callers
// must not modify it.
var RouteProtocols = []string{"grpc", "grpcs", "http", "https", "tcp", "tls", "tls_passthrough", "udp"}

// Default returns a new entity of kind k with Kong's default field values
// (K@2.8.0:kong/db/schema/entities) and everything else zero, or nil for an
// unknown kind. The caller owns the result.
func Default(k Kind) Entity {
	switch k {
	case KindCertificate:
		return &Certificate{}
	case KindService:
		return &Service{Retries: 5, Protocol: "http", Port: 80, ConnectTimeout: 60000,
			WriteTimeout: 60000, ReadTimeout: 60000, Enabled: true}
	case KindRoute:
		return &Route{Protocols: []string{"http", "https"}, HTTPSRedirectStatusCode: 426,
			StripPath: true, PathHandling: "v0", RequestBuffering: true, ResponseBuffering: true}
	case KindConsumer:
		return &Consumer{}
	case KindPlugin:
		return &Plugin{Enabled: true, Config: json.RawMessage(`{}`),
			Protocols: append([]string(nil), PluginProtocols...)}
	case KindKeyAuth:
		return &KeyAuthCredential{}
	case KindBasicAuth:
		return &BasicAuthCredential{}
	case KindJWT:
		return &JWTSecret{Algorithm: "HS256"}
	}
	return nil
}

// DefaultPort returns the port a service uses for protocol when its url
// names none: 443 for https and grpcs, 80 otherwise.
func DefaultPort(protocol string) int {
	if protocol == "https" || protocol == "grpcs" {
		return 443
	}
	return 80
}
