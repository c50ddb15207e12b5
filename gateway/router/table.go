package router

import (
	"slices"
	"sort"
	"strings"
)

// node is a node of a rule tree: the rules that share one host key (or
// have no hosts) in a radix tree over path bytes. A prefix rule sits at its
// path, a regex rule at the literal prefix every match of its regex starts
// with, and a rule without paths at the root. Walking the request path down
// the tree visits exactly the rules that can match it. The key of a node is
// the concatenation of the labels from the root; a root's label is empty.
//
// Nodes reachable from a Router are never modified. A Builder modifies
// only the nodes tagged with its current generation (gen), which no Router
// can reach yet, and copies the others on the way down (see builder.go).
type node struct {
	label string
	// first holds the first byte of each child's label, parallel to
	// children.
	first    string
	children []*node
	// rules are the rules keyed at this node, best first (rule.before).
	rules []*rule
	gen   uint64
}

// best returns the best rule of the tree rooted at n that matches, or cur
// when cur outranks all of them. path is normalized.
func (n *node) best(method, path string, header Header, cur *rule) *rule {
	// Visit every node whose key is a prefix of the path: a shorter prefix
	// can still win on another field (methods, headers), and a node's rules
	// are in priority order, so the first match there is the node's best.
	rest := path
	for {
		for _, rl := range n.rules {
			if cur != nil && !rl.before(cur) {
				break
			}
			if rl.matchRest(method, header) && (rl.kind != regexPath || rl.re.MatchString(path)) {
				cur = rl
				break
			}
		}
		if rest == "" {
			return cur
		}
		i := strings.IndexByte(n.first, rest[0])
		if i < 0 {
			return cur
		}
		n = n.children[i]
		if !strings.HasPrefix(rest, n.label) {
			return cur
		}
		rest = rest[len(n.label):]
	}
}

// own returns n itself when generation gen may modify it, else a copy
// tagged gen (with its own children and rules slices).
func (n *node) own(gen uint64) *node {
	if n.gen == gen {
		return n
	}
	c := *n
	c.gen = gen
	c.children = slices.Clone(n.children)
	c.rules = slices.Clone(n.rules)
	return &c
}

// insert files rl under path (the part of its key below n) in the tree
// rooted at n and returns the new n: n itself when gen owned it, else a
// copy. Only the nodes on the path are copied.
func (n *node) insert(gen uint64, path string, rl *rule) *node {
	n = n.own(gen)
	if path == "" {
		i := sort.Search(len(n.rules), func(i int) bool { return rl.before(n.rules[i]) })
		n.rules = slices.Insert(n.rules, i, rl)
		return n
	}
	i := strings.IndexByte(n.first, path[0])
	if i < 0 {
		n.first += path[:1]
		n.children = append(n.children, &node{label: path, rules: []*rule{rl}, gen: gen})
		return n
	}
	c := n.children[i]
	common := commonPrefix(c.label, path)
	if common < len(c.label) {
		label := c.label
		tail := c.own(gen)
		tail.label = label[common:]
		c = &node{label: label[:common], first: label[common : common+1], children: []*node{tail}, gen: gen}
	}
	n.children[i] = c.insert(gen, path[common:], rl)
	return n
}

// remove takes rl, filed under path below n, out of the tree rooted at n
// and returns the new n: n itself when rl is not there, nil when the tree
// became empty. Nodes left without rules and with one child merge into it,
// except the root (its label must stay empty).
func (n *node) remove(gen uint64, path string, rl *rule, root bool) *node {
	if path == "" {
		j := slices.Index(n.rules, rl)
		if j < 0 {
			return n
		}
		n = n.own(gen)
		n.rules = slices.Delete(n.rules, j, j+1)
	} else {
		i := strings.IndexByte(n.first, path[0])
		if i < 0 {
			return n
		}
		c := n.children[i]
		if !strings.HasPrefix(path, c.label) {
			return n
		}
		nc := c.remove(gen, path[len(c.label):], rl, false)
		if nc == c {
			return n
		}
		n = n.own(gen)
		if nc == nil {
			n.children = slices.Delete(n.children, i, i+1)
			n.first = n.first[:i] + n.first[i+1:]
		} else {
			n.children[i] = nc
		}
	}
	return n.compact(gen, root)
}

// compact returns nil for an empty n, and n's only child, relabeled, for a
// non-root n without rules; else n.
func (n *node) compact(gen uint64, root bool) *node {
	if len(n.rules) > 0 {
		return n
	}
	switch {
	case len(n.children) == 0:
		return nil
	case len(n.children) == 1 && !root:
		label := n.label
		c := n.children[0].own(gen)
		c.label = label + c.label
		return c
	}
	return n
}

// commonPrefix returns the length of the longest common prefix of a and b.
func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
