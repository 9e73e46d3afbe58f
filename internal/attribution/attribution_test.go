package attribution

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// orderAt is the creation time of every hand-computed order below.
var orderAt = time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// touch is a touch d before orderAt.
func touch(d time.Duration, direct bool) Touch {
	return Touch{At: orderAt.Add(-d), Direct: direct}
}

// near reports whether got equals want weight for weight within 1e-12.
func near(got, want []float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			return false
		}
	}
	return true
}

type handCase struct {
	name    string
	touches []Touch
	want    map[string][]float64 // model → weights computed by hand
}

// handCases are paths whose weights were worked out by hand, per model.
var handCases = []handCase{
	{
		// organic −21d, direct −14d, cpc −7d, email 0d. Direct in the
		// middle gets nothing; the models run over the three others.
		// Time decay: raw 2^(−21/7)=1/8, 2^(−7/7)=1/2, 2^0=1; total 13/8
		// → 1/13, 4/13, 8/13.
		name: "four touches, direct in the middle",
		touches: []Touch{
			touch(21*day, false), touch(14*day, true), touch(7*day, false), touch(0, false),
		},
		want: map[string][]float64{
			LastNonDirect: {0, 0, 0, 1},
			LastClick:     {0, 0, 0, 1},
			FirstClick:    {1, 0, 0, 0},
			Linear:        {1.0 / 3, 0, 1.0 / 3, 1.0 / 3},
			PositionBased: {0.4, 0, 0.2, 0.4},
			TimeDecay:     {1.0 / 13, 0, 4.0 / 13, 8.0 / 13},
		},
	},
	{
		// cpc −14d, direct −10d, organic −7d, direct −2d, referral at the
		// order, direct at the order (equal time, given after the
		// referral, so it is the last touch). last_click takes the final
		// direct touch; every other model ignores the directs.
		// Time decay: raw 1/4, 1/2, 1 → 1/7, 2/7, 4/7.
		name: "six touches ending on a direct one",
		touches: []Touch{
			touch(14*day, false), touch(10*day, true), touch(7*day, false),
			touch(2*day, true), touch(0, false), touch(0, true),
		},
		want: map[string][]float64{
			LastNonDirect: {0, 0, 0, 0, 1, 0},
			LastClick:     {0, 0, 0, 0, 0, 1},
			FirstClick:    {1, 0, 0, 0, 0, 0},
			Linear:        {1.0 / 3, 0, 1.0 / 3, 0, 1.0 / 3, 0},
			PositionBased: {0.4, 0, 0.2, 0, 0.4, 0},
			TimeDecay:     {1.0 / 7, 0, 2.0 / 7, 0, 4.0 / 7, 0},
		},
	},
	{
		// Nothing but direct: the models apply to all touches.
		// Time decay 0, 7 and 14 days before: raw 1/4, 1/2, 1 → 1/7, 2/7, 4/7.
		name:    "all direct",
		touches: []Touch{touch(14*day, true), touch(7*day, true), touch(0, true)},
		want: map[string][]float64{
			LastNonDirect: {0, 0, 1},
			LastClick:     {0, 0, 1},
			FirstClick:    {1, 0, 0},
			Linear:        {1.0 / 3, 1.0 / 3, 1.0 / 3},
			PositionBased: {0.4, 0.2, 0.4},
			TimeDecay:     {1.0 / 7, 2.0 / 7, 4.0 / 7},
		},
	},
	{
		name:    "single non-direct touch",
		touches: []Touch{touch(30*day, false)},
		want: map[string][]float64{
			LastNonDirect: {1}, LastClick: {1}, FirstClick: {1},
			Linear: {1}, PositionBased: {1}, TimeDecay: {1},
		},
	},
	{
		name:    "single direct touch",
		touches: []Touch{touch(time.Hour, true)},
		want: map[string][]float64{
			LastNonDirect: {1}, LastClick: {1}, FirstClick: {1},
			Linear: {1}, PositionBased: {1}, TimeDecay: {1},
		},
	},
	{
		// Two non-direct touches: position-based halves.
		// Time decay −14d and −7d: raw 1/4, 1/2 → 1/3, 2/3.
		name:    "two touches",
		touches: []Touch{touch(14*day, false), touch(7*day, false)},
		want: map[string][]float64{
			LastNonDirect: {0, 1},
			LastClick:     {0, 1},
			FirstClick:    {1, 0},
			Linear:        {0.5, 0.5},
			PositionBased: {0.5, 0.5},
			TimeDecay:     {1.0 / 3, 2.0 / 3},
		},
	},
	{
		// Direct first, then non-direct: the direct one is excluded
		// everywhere, so even first_click credits the second touch.
		name:    "direct then non-direct",
		touches: []Touch{touch(3*day, true), touch(day, false)},
		want: map[string][]float64{
			LastNonDirect: {0, 1},
			LastClick:     {0, 1},
			FirstClick:    {0, 1},
			Linear:        {0, 1},
			PositionBased: {0, 1},
			TimeDecay:     {0, 1},
		},
	},
	{
		// Non-direct then direct: last_click is the only model that
		// credits the direct touch.
		name:    "non-direct then direct",
		touches: []Touch{touch(3*day, false), touch(day, true)},
		want: map[string][]float64{
			LastNonDirect: {1, 0},
			LastClick:     {0, 1},
			FirstClick:    {1, 0},
			Linear:        {1, 0},
			PositionBased: {1, 0},
			TimeDecay:     {1, 0},
		},
	},
	{
		// Five non-direct touches: 0.4, 0.2/3 ×3, 0.4. Time decay at
		// −28, −21, −14, −7, 0 days: raw 1/16, 1/8, 1/4, 1/2, 1; total
		// 31/16 → 1/31, 2/31, 4/31, 8/31, 16/31.
		name: "five touches",
		touches: []Touch{
			touch(28*day, false), touch(21*day, false), touch(14*day, false),
			touch(7*day, false), touch(0, false),
		},
		want: map[string][]float64{
			LastNonDirect: {0, 0, 0, 0, 1},
			LastClick:     {0, 0, 0, 0, 1},
			FirstClick:    {1, 0, 0, 0, 0},
			Linear:        {0.2, 0.2, 0.2, 0.2, 0.2},
			PositionBased: {0.4, 0.2 / 3, 0.2 / 3, 0.2 / 3, 0.4},
			TimeDecay:     {1.0 / 31, 2.0 / 31, 4.0 / 31, 8.0 / 31, 16.0 / 31},
		},
	},
	{
		// Two non-direct touches at the same moment keep their given
		// order: the second is the last one, the first is the first.
		// Equal ages share time decay equally.
		name:    "equal times keep their order",
		touches: []Touch{touch(day, false), touch(day, false)},
		want: map[string][]float64{
			LastNonDirect: {0, 1},
			LastClick:     {0, 1},
			FirstClick:    {1, 0},
			Linear:        {0.5, 0.5},
			PositionBased: {0.5, 0.5},
			TimeDecay:     {0.5, 0.5},
		},
	},
}

func TestWeightsHandComputed(t *testing.T) {
	for _, c := range handCases {
		for _, m := range Models {
			want, ok := c.want[m]
			if !ok {
				t.Fatalf("%s: no expectation for %s", c.name, m)
			}
			got := Weights(m, c.touches, orderAt)
			if !near(got, want) {
				t.Errorf("%s, %s: Weights = %v, want %v", c.name, m, got, want)
			}
			checkInvariants(t, m, c.touches, got)
		}
	}
}

// The brief's example: touches 0, 7 and 14 days before the order have raw
// time-decay weights 1, 0.5, 0.25 → 4/7, 2/7, 1/7 (oldest first: 1/7, 2/7, 4/7).
func TestTimeDecayHalfLife(t *testing.T) {
	touches := []Touch{touch(14*day, false), touch(7*day, false), touch(0, false)}
	got := Weights(TimeDecay, touches, orderAt)
	want := []float64{1.0 / 7, 2.0 / 7, 4.0 / 7}
	if !near(got, want) {
		t.Fatalf("Weights = %v, want %v", got, want)
	}
	// Shifting the whole path (and the order) in time changes nothing.
	shifted := []Touch{touch(21*day, false), touch(14*day, false), touch(7*day, false)}
	if got := Weights(TimeDecay, shifted, orderAt.Add(-7*day)); !near(got, want) {
		t.Errorf("shifted path: Weights = %v, want %v", got, want)
	}
}

// A touch after the order's creation counts as age 0, like one at the order.
func TestTimeDecayNegativeAgeClamps(t *testing.T) {
	touches := []Touch{touch(7*day, false), touch(-3*day, false)} // raw 1/2, 1
	got := Weights(TimeDecay, touches, orderAt)
	if want := []float64{1.0 / 3, 2.0 / 3}; !near(got, want) {
		t.Fatalf("Weights = %v, want %v", got, want)
	}
	touches = []Touch{touch(-1*day, false), touch(-5*day, false)} // both age 0
	got = Weights(TimeDecay, touches, orderAt)
	if want := []float64{0.5, 0.5}; !near(got, want) {
		t.Fatalf("both after the order: Weights = %v, want %v", got, want)
	}
}

// Touches far older than the order would underflow 2^(−age/7d) to 0 if it
// were computed from the order's time alone; the path must still sum to 1.
func TestTimeDecayVeryOld(t *testing.T) {
	old := 100 * 365 * day // 2^(−5214) underflows float64
	touches := []Touch{touch(old+7*day, false), touch(old, false)}
	got := Weights(TimeDecay, touches, orderAt)
	if want := []float64{1.0 / 3, 2.0 / 3}; !near(got, want) {
		t.Fatalf("Weights = %v, want %v", got, want)
	}
}

func TestWeightsEmpty(t *testing.T) {
	for _, m := range slices.Concat(Models, []string{"", "bogus"}) {
		if got := Weights(m, nil, orderAt); got == nil || len(got) != 0 {
			t.Errorf("Weights(%q, nil) = %#v, want empty", m, got)
		}
		if got := Weights(m, []Touch{}, orderAt); len(got) != 0 {
			t.Errorf("Weights(%q, []) = %#v, want empty", m, got)
		}
	}
}

// Weights takes names as ParseModel does, and falls back to Default for
// anything ParseModel rejects instead of panicking.
func TestWeightsModelNames(t *testing.T) {
	touches := handCases[1].touches
	def := Weights(Default, touches, orderAt)
	for _, m := range []string{"", "bogus", "last-non-direct", " linear"} {
		if got := Weights(m, touches, orderAt); !near(got, def) {
			t.Errorf("Weights(%q) = %v, want Default's %v", m, got, def)
		}
	}
	if got, want := Weights("LINEAR", touches, orderAt), Weights(Linear, touches, orderAt); !near(got, want) {
		t.Errorf(`Weights("LINEAR") = %v, want %v`, got, want)
	}
}

// Touches given out of time order are credited as if sorted; the result
// still lines up with the caller's slice.
func TestWeightsUnsortedInput(t *testing.T) {
	sorted := handCases[1].touches
	perm := []int{4, 1, 5, 0, 3, 2} // keeps the equal-time pair 4 before 5
	shuffled := make([]Touch, len(perm))
	for k, i := range perm {
		shuffled[k] = sorted[i]
	}
	for _, m := range Models {
		want := Weights(m, sorted, orderAt)
		got := Weights(m, shuffled, orderAt)
		for k, i := range perm {
			if math.Abs(got[k]-want[i]) > 1e-12 {
				t.Errorf("%s: shuffled weight of touch %d = %v, want %v", m, i, got[k], want[i])
			}
		}
	}
}

func TestParseModel(t *testing.T) {
	good := []struct{ in, want string }{
		{"", Default},
		{"last_non_direct", LastNonDirect},
		{"last_click", LastClick},
		{"first_click", FirstClick},
		{"linear", Linear},
		{"position_based", PositionBased},
		{"time_decay", TimeDecay},
		{"Linear", Linear},
		{"TIME_DECAY", TimeDecay},
		{"Last_Non_Direct", LastNonDirect},
	}
	for _, c := range good {
		if got, err := ParseModel(c.in); err != nil || got != c.want {
			t.Errorf("ParseModel(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"bogus", "last-non-direct", "lastnondirect", " linear", "linear ", "u-shaped"} {
		got, err := ParseModel(in)
		if err == nil {
			t.Errorf("ParseModel(%q) = %q, want an error", in, got)
			continue
		}
		for _, m := range Models {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("ParseModel(%q) error %q does not name %q", in, err, m)
			}
		}
	}
}

func TestModels(t *testing.T) {
	want := []string{LastNonDirect, LastClick, FirstClick, Linear, PositionBased, TimeDecay}
	if len(Models) != len(want) {
		t.Fatalf("Models = %v, want %v", Models, want)
	}
	for i := range want {
		if Models[i] != want[i] {
			t.Fatalf("Models = %v, want %v", Models, want)
		}
	}
	if Default != LastNonDirect {
		t.Errorf("Default = %q, want %q", Default, LastNonDirect)
	}
}

// checkInvariants asserts what holds for every model and every non-empty
// path: one weight per touch, each ≥ 0, summing to 1 within 1e-9; direct
// touches at 0 when a non-direct one exists (except LastClick); and, for a
// path given in time order, a sum of exactly 1 in slice order.
func checkInvariants(t testing.TB, model string, touches []Touch, w []float64) {
	t.Helper()
	if len(w) != len(touches) {
		t.Fatalf("%s: %d weights for %d touches", model, len(w), len(touches))
	}
	if len(touches) == 0 {
		return
	}
	var sum float64
	anyNonDirect := false
	for i, x := range w {
		if !(x >= 0) || math.IsInf(x, 0) {
			t.Fatalf("%s: weight %d = %v, want ≥ 0 and finite (%v)", model, i, x, w)
		}
		sum += x
		anyNonDirect = anyNonDirect || !touches[i].Direct
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Fatalf("%s: weights %v sum to %v, want 1", model, w, sum)
	}
	sortedInput := true
	for i := 1; i < len(touches); i++ {
		if touches[i].At.Before(touches[i-1].At) {
			sortedInput = false
		}
	}
	if sortedInput && sum != 1 {
		t.Fatalf("%s: weights %v of a sorted path sum to %v, want exactly 1", model, w, sum)
	}
	if model != LastClick && anyNonDirect {
		for i, x := range w {
			if touches[i].Direct && x != 0 {
				t.Fatalf("%s: direct touch %d has weight %v though a non-direct touch exists (%v)", model, i, x, w)
			}
		}
	}
	if model == LastClick {
		last := 0 // the latest touch, equal times resolved by slice order
		for i := range touches {
			if !touches[i].At.Before(touches[last].At) {
				last = i
			}
		}
		if w[last] != 1 {
			t.Fatalf("last_click: weight of the last touch %d = %v, want 1 (%v)", last, w[last], w)
		}
	}
}

// TestWeightsProperties runs every model over seeded random paths: mixes of
// direct and non-direct touches, equal times, touches after the order, paths
// out of order, and checks the invariants.
func TestWeightsProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 2025))
	for range 20000 {
		n := 1 + rng.IntN(16)
		touches := make([]Touch, n)
		at := orderAt.Add(-time.Duration(rng.Int64N(int64(400 * day))))
		for i := range touches {
			if rng.IntN(4) != 0 { // sometimes keep the previous time: equal times
				at = at.Add(time.Duration(rng.Int64N(int64(30 * day))))
			}
			touches[i] = Touch{At: at, Direct: rng.IntN(3) == 0}
		}
		if rng.IntN(10) == 0 { // now and then a path out of order
			rng.Shuffle(n, func(i, j int) { touches[i], touches[j] = touches[j], touches[i] })
		}
		for _, m := range Models {
			checkInvariants(t, m, touches, Weights(m, touches, orderAt))
		}
	}
}

// FuzzWeights: model index (one past the end is an unknown name), number of
// touches, directness bits and per-touch time offsets (int32 seconds before
// the order, negative after it, four bytes each) must give weights that keep
// the invariants, without panicking.
func FuzzWeights(f *testing.F) {
	f.Add(uint8(0), uint8(4), uint64(0b0010), []byte{0, 0, 0, 10, 0, 0, 0, 5, 0, 0, 0, 3, 0, 0, 0, 1})
	f.Add(uint8(5), uint8(3), uint64(0), []byte{0, 18, 117, 0, 0, 9, 58, 128, 0, 0, 0, 0})
	f.Add(uint8(1), uint8(6), uint64(0b101010), []byte{})
	f.Add(uint8(4), uint8(1), uint64(1), []byte{255, 255, 255, 255})
	f.Add(uint8(6), uint8(64), uint64(math.MaxUint64), []byte{128, 0, 0, 0, 127, 255, 255, 255})
	f.Fuzz(func(t *testing.T, model uint8, count uint8, direct uint64, offsets []byte) {
		name := "unknown"
		if i := int(model) % (len(Models) + 1); i < len(Models) {
			name = Models[i]
		}
		n := int(count) % 65
		touches := make([]Touch, n)
		for i := range touches {
			var off int32
			if len(offsets) >= 4*(i+1) {
				off = int32(binary.BigEndian.Uint32(offsets[4*i:]))
			}
			touches[i] = Touch{
				At:     orderAt.Add(-time.Duration(off) * time.Second),
				Direct: direct>>(uint(i)%64)&1 == 1,
			}
		}
		w := Weights(name, touches, orderAt)
		if name == "unknown" {
			name = Default
		}
		checkInvariants(t, name, touches, w)
	})
}

func BenchmarkWeights(b *testing.B) {
	touches := []Touch{
		touch(20*day, false), touch(9*day, true), touch(5*day, false),
		touch(2*day, false), touch(time.Hour, true),
	}
	for _, m := range Models {
		b.Run(m, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Weights(m, touches, orderAt)
			}
		})
	}
}
