package router

import (
	"strings"
)

// table holds the rules that share one host key (or have no hosts) in a
// radix tree over path bytes. A prefix rule sits at its path, a regex rule
// at the literal prefix every match of its regex starts with, and a rule
// without paths at the root. Walking the request path down the tree visits
// exactly the rules that can match it.
type table struct {
	root node
}

// node is a radix tree node. The key of a node is the concatenation of the
// labels from the root.
type node struct {
	label string
	// first holds the first byte of each child's label, parallel to
	// children.
	first    string
	children []*node
	// rules are the rules keyed at this node, sorted by rank because they
	// are inserted in rank order.
	rules []*rule
}

// add files rl into the table.
func (t *table) add(rl *rule) { t.root.insert(rl.key, rl) }

// best returns the highest-ranked rule of t that matches, or cur when cur
// outranks all of them. path is normalized.
func (t *table) best(method, path string, header Header, cur *rule) *rule {
	// Visit every node whose key is a prefix of the path: a shorter prefix
	// can still win on another field (methods, headers), and a node's rules
	// are in rank order, so the first match there is the node's best.
	n, rest := &t.root, path
	for {
		for _, rl := range n.rules {
			if cur != nil && rl.rank >= cur.rank {
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

// insert adds rl under path, splitting edges as needed.
func (n *node) insert(path string, rl *rule) {
	for path != "" {
		i := strings.IndexByte(n.first, path[0])
		if i < 0 {
			n.first += path[:1]
			n.children = append(n.children, &node{label: path, rules: []*rule{rl}})
			return
		}
		c := n.children[i]
		common := commonPrefix(c.label, path)
		if common < len(c.label) {
			tail := &node{label: c.label[common:], first: c.first, children: c.children, rules: c.rules}
			*c = node{label: c.label[:common], first: tail.label[:1], children: []*node{tail}}
		}
		path, n = path[common:], c
	}
	n.rules = append(n.rules, rl)
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
