package crm

import "hash/maphash"

// seenFilter is a Bloom filter of the ids an import has written. When a
// counter has no orders at the start of an import, the only stored orders an
// id can match are those this import wrote: an id the filter has never seen
// needs no lookup at all, which saves the first import of a big history a
// database query per batch. (A false positive only costs a lookup.)
type seenFilter struct {
	bits []uint64
	seed maphash.Seed
}

// newSeenFilter sizes the filter for n ids at about 1% false positives.
func newSeenFilter(n int) *seenFilter {
	words := max(n*10/64+1, 16)
	return &seenFilter{bits: make([]uint64, words), seed: maphash.MakeSeed()}
}

// probes are the filter's four bit positions for id (double hashing).
func (f *seenFilter) probes(id string) [4]uint64 {
	h := maphash.String(f.seed, id)
	h1, h2 := h, h>>32|h<<32|1
	m := uint64(len(f.bits) * 64)
	return [4]uint64{h1 % m, (h1 + h2) % m, (h1 + 2*h2) % m, (h1 + 3*h2) % m}
}

func (f *seenFilter) add(id string) {
	for _, p := range f.probes(id) {
		f.bits[p/64] |= 1 << (p % 64)
	}
}

// mayContain is false only for ids never added.
func (f *seenFilter) mayContain(id string) bool {
	for _, p := range f.probes(id) {
		if f.bits[p/64]&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}
