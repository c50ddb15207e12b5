package router

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// Small vocabularies, so that random routes share hosts, tree edges and
// nodes, and requests hit them.
var (
	eqHosts    = []string{"a.com", "b.com", "x.a.com", "*.a.com", "a.*", "*.com", "B.com:80", "c.a.com"}
	eqPaths    = []string{"/", "/a", "/ab", "/a/b", "/abc", "/b", "/a/b/c", `~/a/\d+`, `~/(a|b)c`, `~/ab?`}
	eqReqHosts = []string{"", "a.com", "b.com", "x.a.com", "q.x.a.com", "a.org", "c.a.com", "zz.com"}
	eqReqPaths = []string{"/", "/a", "/ab", "/abc/d", "/a/12", "/ac", "/bc", "/b/x", "/a/b/c/d", "/zz"}
)

// randomRoute returns a route with id and random fields; one in twenty
// cannot be compiled and one in twenty serves only tcp.
func randomRoute(rng *rand.Rand, id string) *entity.Route {
	r := route(id, created(rng.Int64N(3)), priority(rng.IntN(3)))
	pick := func(from []string, max int) []string {
		var out []string
		for range rng.IntN(max + 1) {
			out = append(out, from[rng.IntN(len(from))])
		}
		return out
	}
	r.Hosts = pick(eqHosts, 2)
	r.Paths = pick(eqPaths, 3)
	r.Methods = pick([]string{"GET", "POST"}, 1)
	if rng.IntN(3) == 0 {
		header("x-h", pick([]string{"1", "2"}, 1)...)(r)
		if len(r.Headers["x-h"]) == 0 {
			r.Headers["x-h"] = []string{"1"}
		}
	}
	switch rng.IntN(20) {
	case 0:
		r.Paths = append(r.Paths, "~(")
	case 1:
		r.Protocols = []string{"tcp"}
	}
	return r
}

// eqRequests is every combination of the request vocabularies.
func eqRequests() []request {
	var out []request
	for _, h := range eqReqHosts {
		for _, p := range eqReqPaths {
			for _, m := range []string{"GET", "POST"} {
				for _, hv := range []string{"", "1", "2"} {
					rq := request{m, h, p, nil}
					if hv != "" {
						rq.header = http.Header{"X-H": {hv}}
					}
					out = append(out, rq)
				}
			}
		}
	}
	return out
}

// bruteRules compiles every route of ts into one list in priority order.
func bruteRules(ts map[string]*entity.Route) []*rule {
	var rules []*rule
	for _, rt := range ts {
		if !isHTTP(rt.Protocols) {
			continue
		}
		if rs, err := compile(rt, nil); err == nil {
			rules = append(rules, rs...)
		}
	}
	sort.Slice(rules, func(i, j int) bool { return rules[i].before(rules[j]) })
	return rules
}

// bruteMatch is the reference: every rule, in priority order, checked
// field by field; the first that matches wins.
func bruteMatch(rules []*rule, rq request) string {
	host, path := hostKey(rq.host), Normalize(rq.path)
	for _, rl := range rules {
		if !bruteHost(rl, host) || !rl.matchRest(rq.method, rq.header) {
			continue
		}
		switch {
		case rl.kind == prefixPath && !strings.HasPrefix(path, rl.path),
			rl.kind == regexPath && !rl.re.MatchString(path):
			continue
		}
		return answer(rl.result(path), true)
	}
	return answer(Match{}, false)
}

func bruteHost(rl *rule, host string) bool {
	if len(rl.hosts) == 0 {
		return true
	}
	for _, h := range rl.hosts {
		switch {
		case strings.HasPrefix(h, "*."):
			if strings.HasSuffix(host, h[1:]) && len(host) > len(h)-1 {
				return true
			}
		case strings.HasSuffix(h, ".*"):
			if strings.HasPrefix(host, h[:len(h)-1]) && len(host) > len(h)-1 {
				return true
			}
		case h == host:
			return true
		}
	}
	return false
}

func answer(m Match, ok bool) string {
	if !ok {
		return "-"
	}
	return m.Route.ID + " " + m.Prefix
}

func answers(r *Router, rqs []request) []string {
	out := make([]string, len(rqs))
	for i, rq := range rqs {
		out[i] = answer(r.Match(rq.method, rq.host, rq.path, rq.header))
	}
	return out
}

// TestBuilderEquivalence applies random Set and Delete sequences. After
// each step the Builder's snapshot must answer every request exactly as
// New over the current routes and as the brute-force reference, and at
// the end every earlier snapshot must still answer as it did when taken.
func TestBuilderEquivalence(t *testing.T) {
	rqs := eqRequests()
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 13))
			b := NewBuilder()
			cur := make(map[string]*entity.Route)
			type snap struct {
				r    *Router
				want []string
			}
			var snaps []snap
			for step := range 250 {
				id := fmt.Sprintf("r%02d", rng.IntN(30))
				if rng.IntN(4) == 0 {
					if got, want := b.Delete(id), wasServed(cur[id]); got != want {
						t.Fatalf("step %d: Delete(%s) = %v, want %v", step, id, got, want)
					}
					delete(cur, id)
				} else {
					rt := randomRoute(rng, id)
					err := b.Set(Target{Route: rt})
					if wantErr := rt.Paths != nil && strings.Contains(strings.Join(rt.Paths, " "), "~(") && isHTTP(rt.Protocols); (err != nil) != wantErr {
						t.Fatalf("step %d: Set(%s) error %v, want error: %v", step, id, err, wantErr)
					}
					if err != nil && !strings.Contains(err.Error(), id) {
						t.Errorf("step %d: error %q does not name route %s", step, err, id)
					}
					cur[id] = rt
				}
				// Take a snapshot at most steps, so that some steps pile up
				// several changes in one generation.
				if rng.IntN(3) == 0 {
					continue
				}
				r := b.Router()
				got := answers(r, rqs)
				var list []Target
				for _, rt := range cur {
					list = append(list, Target{Route: rt})
				}
				fresh, _ := New(list)
				want := answers(fresh, rqs)
				rules := bruteRules(cur)
				for i, rq := range rqs {
					ref := bruteMatch(rules, rq)
					if got[i] != want[i] || got[i] != ref {
						t.Fatalf("step %d: %+v: builder %q, New %q, reference %q", step, rq, got[i], want[i], ref)
					}
				}
				if r.Len() != fresh.Len() {
					t.Fatalf("step %d: Len %d, New's %d", step, r.Len(), fresh.Len())
				}
				snaps = append(snaps, snap{r, got})
			}
			for i, s := range snaps {
				got := answers(s.r, rqs)
				for j := range got {
					if got[j] != s.want[j] {
						t.Fatalf("snapshot %d changed after later steps: %+v answered %q, then %q", i, rqs[j], s.want[j], got[j])
					}
				}
			}
		})
	}
}

// wasServed reports whether a route Set earlier is in the table: it
// compiled and serves HTTP.
func wasServed(rt *entity.Route) bool {
	if rt == nil || !isHTTP(rt.Protocols) {
		return false
	}
	_, err := compile(rt, nil)
	return err == nil
}

// TestBuilderPrunes: deleting every route leaves no tree, shard or
// wildcard length behind, so an emptied table costs Match nothing.
func TestBuilderPrunes(t *testing.T) {
	b := NewBuilder()
	rts := []*entity.Route{
		route("a", hosts("a.com", "*.b.com", "c.*"), paths("/x/y", "/x/z")),
		route("b", paths("/x/y/z", `~/x/\d`)),
		route("c", hosts("a.com"), paths("/x")),
	}
	for _, rt := range rts {
		if err := b.Set(Target{Route: rt}); err != nil {
			t.Fatal(err)
		}
	}
	before := b.Router()
	for _, rt := range rts {
		if !b.Delete(rt.ID) {
			t.Fatalf("Delete(%s) = false", rt.ID)
		}
	}
	if b.Delete("a") {
		t.Error("Delete of a deleted route = true")
	}
	r := b.Router()
	if *r != (Router{}) {
		t.Errorf("emptied table is not the zero Router: %+v", *r)
	}
	if m, ok := before.Match("GET", "x.b.com", "/x/z", nil); !ok || m.Route.ID != "a" {
		t.Errorf("earlier snapshot lost route a: %v %v", m, ok)
	}
}

// TestBuilderSetReplaces: re-Setting a route moves it, and a version that
// fails to compile takes the old one out.
func TestBuilderSetReplaces(t *testing.T) {
	b := NewBuilder()
	if err := b.Set(Target{Route: route("a", paths("/old"))}); err != nil {
		t.Fatal(err)
	}
	if err := b.Set(Target{Route: route("a", paths("/new"))}); err != nil {
		t.Fatal(err)
	}
	r := b.Router()
	if _, ok := r.Match("GET", "", "/old", nil); ok {
		t.Error("/old still matches after the route moved to /new")
	}
	if _, ok := r.Match("GET", "", "/new", nil); !ok || r.Len() != 1 {
		t.Errorf("/new does not match (Len %d)", r.Len())
	}
	err := b.Set(Target{Route: route("a", paths("bad"))})
	if err == nil || !strings.Contains(err.Error(), "route a") {
		t.Errorf("Set of an invalid route: %v, want an error naming route a", err)
	}
	if r := b.Router(); r.Len() != 0 {
		t.Errorf("invalid route kept its old version: Len %d", r.Len())
	}
}
