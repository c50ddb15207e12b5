package plugins

import "testing"

func TestValuesAreIndependentSlices(t *testing.T) {
	var c Context
	var got [][]string
	for i := range valueSlab + 3 { // crosses into a second slab
		got = append(got, c.Values(string(rune('a'+i%26))))
	}
	for i, v := range got {
		if len(v) != 1 || cap(v) != 1 || v[0] != string(rune('a'+i%26)) {
			t.Fatalf("value %d = %q (cap %d)", i, v, cap(v))
		}
	}
	// Appending must copy, never write into the next value.
	grown := append(got[0], "x")
	if got[1][0] != "b" || len(grown) != 2 {
		t.Fatalf("append to a value clobbered its neighbour: %q %q", got[1], grown)
	}
}

func TestValuesDoesNotAllocatePerValue(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		var c Context
		for range 16 {
			_ = c.Values("v")
		}
	})
	if allocs > 1 {
		t.Fatalf("16 values cost %v allocations, want 1 slab", allocs)
	}
}
