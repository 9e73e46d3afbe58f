package web

import (
	"math"
	"strconv"
)

// Charts are drawn on the server as SVG (templates/partials/chart.html):
// they print, work without JavaScript and are tested like any HTML. Each
// mark carries its values in a <title> (the browser's own hover) and in
// data-tip (the script's); the same numbers are in a table beside the
// chart for screen readers and for copying.

// Geometry of a chart's drawing area, in SVG units.
const (
	chartW, chartH = 720, 220
	padLeft        = 64
	padRight       = 12
	padTop         = 10
	padBottom      = 26
)

type chartPoint struct {
	X, Y float64 // in SVG units
	Tip  string
}

type chartBar struct {
	X, Y, W, H float64
	Tip        string
}

type chartSeries struct {
	Name   string
	Class  string // s1…s8: the colour
	Points []chartPoint
	Bars   []chartBar
}

// Polyline is the series' points as an SVG points attribute.
func (s chartSeries) Polyline() string {
	b := make([]byte, 0, len(s.Points)*12)
	for i, p := range s.Points {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendFloat(b, p.X, 'f', 1, 64)
		b = append(b, ',')
		b = strconv.AppendFloat(b, p.Y, 'f', 1, 64)
	}
	return string(b)
}

type chartLabel struct {
	At   float64 // x for the x axis, y for the y axis
	Text string
}

// chart is one chart ready to draw.
type chart struct {
	ID      string // for aria-labelledby
	Title   string
	W, H    float64
	Left    float64 // x of the plot's left edge
	Bottom  float64 // y of the plot's bottom edge
	Right   float64
	LabelX  float64 // x where the y axis' labels end
	AxisY   float64 // y of the x axis' labels
	Series  []chartSeries
	XLabels []chartLabel
	YLabels []chartLabel
	// Hover are the columns of a day: hovering one shows every series'
	// value on that day.
	Hover []chartBar
}

// niceMax rounds v up to 1, 2, 2.5 or 5 times a power of ten, so the axis
// reads in round steps; four steps of niceMax/4 make the grid.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// seriesData is one line or bar series over days.
type seriesData struct {
	Name   string
	Values []float64
	Format func(float64) string // a value as the tip and table show it
}

// dayChart lays out series over days (labels: the days as shown) sharing
// one y axis; bars draws the first series as bars, the rest as lines.
func dayChart(id, title string, days []string, series []seriesData, axis func(float64) string, bars bool) chart {
	c := chart{ID: id, Title: title, W: chartW, H: chartH, Left: padLeft, Bottom: chartH - padBottom, Right: chartW - padRight,
		LabelX: padLeft - 6, AxisY: chartH - 8}
	var top float64
	for _, s := range series {
		for _, v := range s.Values {
			top = math.Max(top, v)
		}
	}
	top = niceMax(top)
	plotW, plotH := c.Right-c.Left, c.Bottom-padTop
	n := len(days)
	if n == 0 {
		return c
	}
	step := plotW / float64(n)
	x := func(i int) float64 { return c.Left + step*(float64(i)+0.5) }
	y := func(v float64) float64 { return c.Bottom - plotH*v/top }
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		c.YLabels = append(c.YLabels, chartLabel{At: y(v), Text: axis(v)})
	}
	// At most about eight day labels, evenly spaced, the last day always.
	every := max(1, (n+7)/8)
	for i := 0; i < n; i += every {
		c.XLabels = append(c.XLabels, chartLabel{At: x(i), Text: days[i]})
	}
	if (n-1)%every != 0 {
		c.XLabels = append(c.XLabels, chartLabel{At: x(n - 1), Text: days[n-1]})
	}
	for si, s := range series {
		cs := chartSeries{Name: s.Name, Class: "s" + strconv.Itoa(si%8+1)}
		for i, v := range s.Values {
			tip := days[i] + " · " + s.Name + ": " + s.Format(v)
			if bars && si == 0 {
				w := math.Max(1, step*0.7)
				cs.Bars = append(cs.Bars, chartBar{X: x(i) - w/2, Y: y(v), W: w, H: c.Bottom - y(v), Tip: tip})
			} else {
				cs.Points = append(cs.Points, chartPoint{X: x(i), Y: y(v), Tip: tip})
			}
		}
		c.Series = append(c.Series, cs)
	}
	for i := range days {
		tip := days[i]
		for _, s := range series {
			tip += "\n" + s.Name + ": " + s.Format(s.Values[i])
		}
		c.Hover = append(c.Hover, chartBar{X: c.Left + step*float64(i), Y: padTop, W: step, H: plotH, Tip: tip})
	}
	return c
}

// shareSegment is one part of a 100% bar.
type shareSegment struct {
	Key         string
	Label       string
	Count       int64
	Share       float64 // 0..1
	X, W        float64 // in percent of the bar's width
	Class       string
	Emphasised  bool // "not found", called out
	Link        string
	Percent     string // the share as shown
	ShareString string // the count and the share as shown
}

// shareBar lays out segments (counts) across a 100% bar.
func shareBar(segs []shareSegment) []shareSegment {
	var total int64
	for _, s := range segs {
		total += s.Count
	}
	var x float64
	out := make([]shareSegment, 0, len(segs))
	for _, s := range segs {
		if total > 0 {
			s.Share = float64(s.Count) / float64(total)
		}
		s.X, s.W = x, s.Share*100
		x += s.W
		out = append(out, s)
	}
	return out
}
