package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Every canary entity carries CanaryTag and a per-run tag, and every named
// one a name starting with CanaryPrefix; its routes match only paths under
// CanaryPathRoot. Cleanup deletes an entity only when both the tag and,
// for named kinds, the prefix match.
const (
	CanaryTag      = "sluice-bench-canary"
	CanaryPrefix   = "sluice-canary-"
	CanaryPathRoot = "/_sluice_canary/"
	runTagPrefix   = "sluice-bench-run-"
)

// canary is one run's canary entities, written through one node's Admin
// API. Every probe path lies under the base route, so that a path no
// specific canary route matches falls back to the base route, never to a
// route of the cluster's own (a catch-all "/", say): no probe ever
// reaches a real route or an upstream.
type canary struct {
	a   *admin
	run string
	// svc answers baseStatus (its request-termination plugin) on the base
	// route; alt answers altStatus on every other canary route, so that
	// altStatus on a path proves that the node has its route.
	svc, alt string
	consumer string
	keyPath  string
	rounds   []roundEntities
}

// Statuses of the canary services: a path that only the base route
// matches answers baseStatus, one of the alt service's routes altStatus.
const (
	baseStatus = http.StatusOK
	altStatus  = http.StatusAccepted
)

// roundEntities are what one round changes.
type roundEntities struct {
	newPath, plugPath, delPath string
	plugRoute, delRoute        string
	credID, key                string
}

func newCanary(a *admin, run string) *canary { return &canary{a: a, run: run} }

func (c *canary) name(s string) string { return CanaryPrefix + c.run + "-" + s }
func (c *canary) path(s string) string { return CanaryPathRoot + c.run + "/" + s }
func (c *canary) tags() []string       { return []string{CanaryTag, runTagPrefix + c.run} }

// with returns body with the canary tags added.
func (c *canary) with(body map[string]any) map[string]any {
	body["tags"] = c.tags()
	return body
}

// setup creates the canary services (the first write: a refusal comes
// back from it, wrapped), their routes and plugins, the consumer and every
// round's entities.
func (c *canary) setup(ctx context.Context, rounds int) error {
	var err error
	if c.svc, err = c.service(ctx, "svc", baseStatus); err != nil {
		return err
	}
	if c.alt, err = c.service(ctx, "alt", altStatus); err != nil {
		return err
	}
	if _, err = c.route(ctx, c.svc, "base", c.path("")); err != nil {
		return err
	}
	c.keyPath = c.path("keyed")
	keyed, err := c.route(ctx, c.alt, "keyed", c.keyPath)
	if err != nil {
		return err
	}
	if _, err = c.a.create(ctx, "/routes/"+keyed+"/plugins", c.with(map[string]any{"name": "key-auth"})); err != nil {
		return err
	}
	if c.consumer, err = c.a.create(ctx, "/consumers", c.with(map[string]any{"username": c.name("consumer")})); err != nil {
		return err
	}
	c.rounds = make([]roundEntities, rounds)
	for i := range c.rounds {
		e := &c.rounds[i]
		r := fmt.Sprintf("r%d", i)
		e.newPath, e.plugPath, e.delPath = c.path(r+"/new"), c.path(r+"/plug"), c.path(r+"/del")
		if e.plugRoute, err = c.route(ctx, c.alt, r+"-plug", e.plugPath); err != nil {
			return err
		}
		if e.delRoute, err = c.route(ctx, c.alt, r+"-del", e.delPath); err != nil {
			return err
		}
		e.key = c.name(r + "-" + randomHex(16))
		if e.credID, err = c.a.create(ctx, "/consumers/"+c.consumer+"/key-auth", c.with(map[string]any{"key": e.key})); err != nil {
			return err
		}
	}
	return nil
}

// service creates a canary service whose request-termination plugin
// answers status. Its URL, port 9 (discard) on the node itself, is never
// contacted: the plugin answers first.
func (c *canary) service(ctx context.Context, name string, status int) (string, error) {
	id, err := c.a.create(ctx, "/services", c.with(map[string]any{"name": c.name(name), "url": "http://127.0.0.1:9/"}))
	if err != nil {
		return "", err
	}
	_, err = c.a.create(ctx, "/services/"+id+"/plugins", c.with(map[string]any{"name": "request-termination",
		"config": map[string]any{"status_code": status, "message": "sluice bench canary"}}))
	return id, err
}

func (c *canary) route(ctx context.Context, svc, name, path string) (string, error) {
	return c.a.create(ctx, "/services/"+svc+"/routes", c.with(map[string]any{"name": c.name(name), "paths": []string{path}}))
}

// cleanupKinds is the deletion order: routes take their plugins along,
// services need their routes gone, consumers take their credentials.
var cleanupKinds = []struct {
	kind, nameField string
}{{"routes", "name"}, {"plugins", ""}, {"services", "name"}, {"consumers", "username"}, {"key-auths", ""}}

// Cleanup deletes, through a, the canary entities tagged tag (CanaryTag
// for every run's, or one run's tag) and returns how many it deleted and
// how many are still listed afterwards.
func cleanup(ctx context.Context, a *admin, tag string) (deleted, left int, err error) {
	var errs []error
	for _, k := range cleanupKinds {
		ents, lerr := list(ctx, a, k.kind, tag)
		if lerr != nil {
			errs = append(errs, lerr)
			continue
		}
		for _, e := range ents {
			if k.nameField != "" && !strings.HasPrefix(e.str(k.nameField), CanaryPrefix) {
				continue // tagged by someone else: not ours to delete
			}
			if derr := a.del(ctx, "/"+k.kind+"/"+e.str("id")); derr != nil {
				errs = append(errs, derr)
				continue
			}
			deleted++
		}
	}
	for _, k := range cleanupKinds {
		ents, lerr := list(ctx, a, k.kind, tag)
		if lerr != nil {
			errs = append(errs, lerr)
			continue
		}
		left += len(ents)
	}
	return deleted, left, errors.Join(errs...)
}

type entity map[string]any

func (e entity) str(k string) string { s, _ := e[k].(string); return s }

// list pages through every entity of kind tagged tag.
func list(ctx context.Context, a *admin, kind, tag string) ([]entity, error) {
	var all []entity
	next := "/" + kind + "?size=1000&tags=" + url.QueryEscape(tag)
	for next != "" {
		body, err := a.call(ctx, http.MethodGet, next, nil, http.StatusOK)
		if err != nil {
			return nil, fmt.Errorf("cleanup: cannot list %s: %w", kind, err)
		}
		var page struct {
			Data []entity `json:"data"`
			Next *string  `json:"next"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("cleanup: %s: %w", kind, err)
		}
		all = append(all, page.Data...)
		next = ""
		if page.Next != nil && *page.Next != "" {
			next = *page.Next
			if u, err := url.Parse(next); err == nil && u.IsAbs() {
				next = u.RequestURI() // Kong answers a path; some proxies an absolute URL
			}
		}
	}
	return all, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
