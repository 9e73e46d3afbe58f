// Package attribution splits the credit for one order over the touches that
// led to it. A touch is one step of the order's path — a session, a call or a
// lead — with its time and whether its traffic was direct (typed-in address,
// bookmark, no referrer). Matching finds the path; this package only decides
// how much of the order each touch earns. Everything here is a pure function:
// no I/O, no clock, no randomness, the same input always gives the same
// weights.
//
// The models, named as reports take them (?model=):
//
//   - last_non_direct (the default, as in Calltouch, Matomo and Yandex
//     Metrica): all credit to the last non-direct touch.
//   - last_click: all credit to the last touch, direct or not.
//   - first_click: all credit to the first touch.
//   - linear: equal shares.
//   - position_based (40/20/40): 40% to the first touch, 40% to the last,
//     20% split equally among the ones between; one touch takes everything
//     and two touches take half each.
//   - time_decay (half-life 7 days): a touch's raw weight is 2^(−age/7d),
//     where age is the time from the touch to the order's creation (a touch
//     after the order counts as age 0); raw weights are normalised to sum to 1.
//
// The direct rule: direct touches count only when there is nothing else. For
// every model except last_click, if at least one touch of the path is not
// direct, the direct touches get weight 0 and the model is applied to the
// non-direct touches alone; if every touch is direct, the model is applied to
// all of them. last_click ignores the rule and credits the last touch
// whatever it is — that is all that distinguishes it from last_non_direct.
//
// Weights are non-negative and sum to 1 for every non-empty path; the
// rounding remainder is given to the last touch with a non-zero weight, so
// that summing the weights in path order gives exactly 1.
package attribution

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Model names, as reports take them (?model=).
const (
	LastNonDirect = "last_non_direct" // the default (Calltouch, Matomo, Metrica)
	LastClick     = "last_click"
	FirstClick    = "first_click"
	Linear        = "linear"
	PositionBased = "position_based" // 40/20/40
	TimeDecay     = "time_decay"     // half-life 7 days
)

// Models lists every model name, the default first.
var Models = []string{LastNonDirect, LastClick, FirstClick, Linear, PositionBased, TimeDecay}

// Default is the model used when none is asked for.
const Default = LastNonDirect

// halfLife is the time-decay model's half-life: a touch seven days older than
// another earns half as much.
const halfLife = 7 * 24 * time.Hour

// Position-based shares: the first and the last touch get positionEnd each,
// the touches between share what is left (1 − 2·positionEnd = 20%).
const positionEnd = 0.4

// Touch is one step of an order's path: a session, a call or a lead, with its
// time and whether its traffic is direct.
type Touch struct {
	At     time.Time
	Direct bool
}

// ParseModel reads a model name as a report's ?model= parameter gives it. The
// names of Models are accepted in any letter case ("Linear", "TIME_DECAY");
// the empty string means Default. Anything else is an error that lists the
// allowed values.
func ParseModel(s string) (string, error) {
	if s == "" {
		return Default, nil
	}
	for _, m := range Models {
		if strings.EqualFold(s, m) {
			return m, nil
		}
	}
	return "", fmt.Errorf("attribution: unknown model %q (allowed: %s)", s, strings.Join(Models, ", "))
}

// Weights returns one weight per touch, index for index with touches, for an
// order created at orderAt.
//
// Touches are expected oldest first, as matching produces them. Touches with
// equal times keep their given order (the later in the slice is the later
// touch). Should a caller pass them out of order, they are put in time order
// (stably) before the model is applied, so "first" and "last" always mean the
// earliest and the latest touch; the result still follows the caller's order.
//
// The weights are ≥ 0 and sum to 1 when there is at least one touch (see the
// package comment for the models and the direct rule); for no touches the
// result is empty. The model name is read as ParseModel reads it; a name
// ParseModel would reject is treated as Default rather than panicking, since
// validation belongs to ParseModel.
func Weights(model string, touches []Touch, orderAt time.Time) []float64 {
	w := make([]float64, len(touches))
	if len(touches) == 0 {
		return w
	}
	m, err := ParseModel(model)
	if err != nil {
		m = Default
	}
	path := eligible(m, touches, pathOrder(touches))
	switch m {
	case LastClick, LastNonDirect:
		w[path[len(path)-1]] = 1
	case FirstClick:
		w[path[0]] = 1
	case Linear:
		share := 1 / float64(len(path))
		for _, i := range path {
			w[i] = share
		}
	case PositionBased:
		positionBased(w, path)
	case TimeDecay:
		timeDecay(w, path, touches, orderAt)
	}
	absorbRemainder(w, path)
	return w
}

// pathOrder returns the indices of touches in time order, equal times keeping
// their slice order. For a slice already sorted (the usual case) that is
// simply 0, 1, …, n−1.
func pathOrder(touches []Touch) []int {
	order := make([]int, len(touches))
	sorted := true
	for i := range touches {
		order[i] = i
		if i > 0 && touches[i].At.Before(touches[i-1].At) {
			sorted = false
		}
	}
	if !sorted {
		slices.SortStableFunc(order, func(a, b int) int {
			return touches[a].At.Compare(touches[b].At)
		})
	}
	return order
}

// eligible filters order (in place) down to the touches the model credits:
// all of them for LastClick, or when every touch is direct; otherwise only
// the non-direct ones. The result is never empty for a non-empty path.
func eligible(model string, touches []Touch, order []int) []int {
	if model == LastClick {
		return order
	}
	path := order[:0]
	for _, i := range order {
		if !touches[i].Direct {
			path = append(path, i)
		}
	}
	if len(path) == 0 { // all direct: the model applies to all of them
		return order[:len(touches)]
	}
	return path
}

// positionBased applies 40/20/40 over path: one touch takes 1, two take 0.5
// each, n ≥ 3 give 0.4 to the first and the last and 0.2/(n−2) to each
// touch between.
func positionBased(w []float64, path []int) {
	switch n := len(path); n {
	case 1:
		w[path[0]] = 1
	case 2:
		w[path[0]], w[path[1]] = 0.5, 0.5
	default:
		middle := (1 - 2*positionEnd) / float64(n-2)
		for _, i := range path[1 : n-1] {
			w[i] = middle
		}
		w[path[0]], w[path[n-1]] = positionEnd, positionEnd
	}
}

// timeDecay gives each touch of path 2^(−age/halfLife), age = orderAt − At
// clamped at 0, normalised to sum to 1. The exponents are taken relative to
// the youngest touch of the path (which gets raw weight 1), which changes
// nothing after normalisation but keeps touches years older than the order
// from underflowing to an all-zero path. Ages beyond time.Duration's range
// (~292 years) saturate.
func timeDecay(w []float64, path []int, touches []Touch, orderAt time.Time) {
	age := func(i int) time.Duration {
		return max(orderAt.Sub(touches[i].At), 0)
	}
	youngest := age(path[0])
	for _, i := range path[1:] {
		youngest = min(youngest, age(i))
	}
	var total float64
	for _, i := range path {
		w[i] = math.Exp2(-float64(age(i)-youngest) / float64(halfLife))
		total += w[i]
	}
	for _, i := range path {
		w[i] /= total
	}
}

// absorbRemainder makes the weights of path sum to exactly 1 in path order by
// giving the last non-zero weight whatever the others leave (1 − their sum).
// With the others summing to s ≤ 1, s + (1 − s) rounds to exactly 1. The
// last non-zero weight is never the small one in any model (it is 1, 1/n,
// 0.4, 0.5 or the youngest touch's time-decay share), so the remainder cannot
// turn it negative; it is clamped at 0 all the same.
func absorbRemainder(w []float64, path []int) {
	last := -1
	for k := len(path) - 1; k >= 0; k-- {
		if w[path[k]] != 0 {
			last = k
			break
		}
	}
	if last < 0 {
		return // cannot happen: every model puts weight somewhere
	}
	var others float64
	for _, i := range path[:last] {
		others += w[i]
	}
	w[path[last]] = max(1-others, 0)
}
