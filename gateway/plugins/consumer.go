package plugins

import "github.com/sluice-gw/sluice/gateway/entity"

// SetConsumerHeaders tells the service who the consumer of an
// authenticated request is, with Kong's headers (X-Consumer-ID,
// X-Consumer-Custom-ID, X-Consumer-Username, X-Credential-Identifier,
// X-Anonymous-Consumer); headers the client sent under these names are
// replaced or removed. credID is the credential's identifier (its id, key or
// username, as each plugin says), "" for the anonymous consumer.
func SetConsumerHeaders(u Upstream, consumer *entity.Consumer, credID string, anonymous bool) {
	u.SetHeader("X-Consumer-ID", consumer.ID)
	setOrClear(u, "X-Consumer-Custom-ID", consumer.CustomID)
	setOrClear(u, "X-Consumer-Username", consumer.Username)
	if credID == "" {
		u.ClearHeader("X-Credential-Identifier")
	} else {
		u.SetHeader("X-Credential-Identifier", credID)
	}
	if anonymous {
		u.SetHeader("X-Anonymous-Consumer", "true")
	} else {
		u.ClearHeader("X-Anonymous-Consumer")
	}
}

func setOrClear(u Upstream, name string, v *string) {
	if v == nil {
		u.ClearHeader(name)
		return
	}
	u.SetHeader(name, *v)
}
