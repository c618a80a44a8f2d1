package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// metricSpec is one compared metric: its key in result.Metrics, a short
// name and whether more is better.
type metricSpec struct {
	key, name string
	higher    bool
}

var compared = map[string][]metricSpec{
	wIdle: {
		{"connect_per_s", "connects/s", true},
		{"rss_per_conn_bytes", "RSS B/conn", false},
		{"heap_stack_per_conn_bytes", "heap+stack B/conn", false},
	},
	wFanout: {
		{"deliveries_per_s", "deliveries/s", true},
		{"delivered_pct", "delivered %", true},
		{"server_cpu_us_per_delivery", "server CPU µs/delivery", false},
		{"latency_p50_ms", "p50 ms", false},
		{"latency_p99_ms", "p99 ms", false},
		{"latency_p999_ms", "p99.9 ms", false},
	},
	wChannels: {
		{"deliveries_per_s", "deliveries/s", true},
		{"delivered_pct", "delivered %", true},
		{"server_cpu_us_per_delivery", "server CPU µs/delivery", false},
		{"latency_p50_ms", "p50 ms", false},
		{"latency_p99_ms", "p99 ms", false},
	},
	wEvents: {
		{"round_trips_per_s", "round trips/s", true},
		{"latency_p50_ms", "p50 ms", false},
		{"latency_p99_ms", "p99 ms", false},
	},
}

var workloadOrder = []string{wIdle, wFanout, wChannels, wEvents}

// row is one line of the comparison.
type row struct {
	Workload, Variant, Metric, Label string
	Livegate, Centrifugo             float64
	Higher                           bool
}

// Ratio is livegate / Centrifugo (NaN when either is missing).
func (r row) Ratio() float64 {
	if r.Centrifugo == 0 || math.IsNaN(r.Livegate) || math.IsNaN(r.Centrifugo) {
		return math.NaN()
	}
	return r.Livegate / r.Centrifugo
}

// Advantage is how many times better livegate did: the ratio for
// higher-is-better metrics, its inverse otherwise.
func (r row) Advantage() float64 {
	q := r.Ratio()
	if r.Higher || q == 0 {
		return q
	}
	return 1 / q
}

// readResults reads JSON lines; later results replace earlier ones with
// the same driver, workload, variant and label.
func readResults(files []string) ([]result, error) {
	byKey := map[string]result{}
	var order []string
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			var r result
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s:%d: %w", name, n, err)
			}
			k := strings.Join([]string{r.Driver, r.Workload, r.Variant, r.Label}, "\x00")
			if _, ok := byKey[k]; !ok {
				order = append(order, k)
			}
			byKey[k] = r
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	out := make([]result, 0, len(order))
	for _, k := range order {
		out = append(out, byKey[k])
	}
	return out, nil
}

// compare pairs livegate's and Centrifugo's results.
func compare(results []result) []row {
	type key struct{ w, v, l string }
	lg, cf := map[key]result{}, map[key]result{}
	var keys []key
	for _, r := range results {
		k := key{r.Workload, r.Variant, r.Label}
		if _, ok := lg[k]; !ok {
			if _, ok := cf[k]; !ok {
				keys = append(keys, k)
			}
		}
		if r.Driver == "centrifugo" {
			cf[k] = r
		} else {
			lg[k] = r
		}
	}
	slices.SortStableFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(slices.Index(workloadOrder, a.w), slices.Index(workloadOrder, b.w)),
			strings.Compare(a.v, b.v), strings.Compare(a.l, b.l))
	})
	get := func(m map[key]result, k key, metric string) float64 {
		r, ok := m[k]
		if !ok {
			return math.NaN()
		}
		v, ok := r.Metrics[metric]
		if !ok {
			return math.NaN()
		}
		return v
	}
	var rows []row
	for _, k := range keys {
		for _, m := range compared[k.w] {
			rows = append(rows, row{
				Workload: k.w, Variant: k.v, Metric: m.name, Label: k.l, Higher: m.higher,
				Livegate: get(lg, k, m.key), Centrifugo: get(cf, k, m.key),
			})
		}
	}
	return rows
}

func fmtValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// writeTable writes rows as a Markdown table.
func writeTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| workload | variant | metric | run | livegate | Centrifugo | livegate/Centrifugo | better |")
	fmt.Fprintln(w, "|---|---|---|---|---:|---:|---:|---|")
	for _, r := range rows {
		q := r.Ratio()
		better := "–"
		if !math.IsNaN(q) {
			switch a := r.Advantage(); {
			case a > 1.05:
				better = "livegate"
			case a < 1/1.05:
				better = "Centrifugo"
			default:
				better = "even (±5%)"
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Workload, cmp.Or(r.Variant, "–"), r.Metric, cmp.Or(r.Label, "–"),
			fmtValue(r.Livegate), fmtValue(r.Centrifugo), fmtValue(q), better)
	}
}

// writeChart draws livegate's advantage per row (>1: livegate better),
// one bar per run label, as a PNG.
func writeChart(file string, rows []row) error {
	var names []string
	var labels []string
	vals := map[string]map[string]float64{} // label -> row name -> advantage
	for _, r := range rows {
		name := strings.TrimSpace(r.Workload + " " + r.Variant + " " + r.Metric)
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
		if !slices.Contains(labels, r.Label) {
			labels = append(labels, r.Label)
		}
		if vals[r.Label] == nil {
			vals[r.Label] = map[string]float64{}
		}
		vals[r.Label][name] = r.Advantage()
	}
	if len(names) == 0 {
		return fmt.Errorf("no rows to draw")
	}
	// Rows top to bottom in table order.
	slices.Reverse(names)
	p := plot.New()
	p.Title.Text = "livegate vs Centrifugo: livegate's advantage (×; >1 livegate better)"
	p.X.Label.Text = "advantage (ratio; inverted for latency and memory)"
	width := vg.Points(8)
	palette := []color.Color{color.RGBA{R: 31, G: 119, B: 180, A: 255}, color.RGBA{R: 255, G: 127, B: 14, A: 255}, color.RGBA{R: 44, G: 160, B: 44, A: 255}}
	maxV := 1.0
	for li, label := range labels {
		v := make(plotter.Values, len(names))
		for i, n := range names {
			a, ok := vals[label][n]
			if !ok || math.IsNaN(a) || math.IsInf(a, 0) {
				a = 0
			}
			v[i] = a
			maxV = max(maxV, a)
		}
		bars, err := plotter.NewBarChart(v, width)
		if err != nil {
			return err
		}
		bars.Horizontal = true
		bars.Color = palette[li%len(palette)]
		bars.LineStyle.Width = 0
		bars.Offset = width * vg.Length(float64(li)-float64(len(labels)-1)/2)
		p.Add(bars)
		p.Legend.Add(cmpOr(label, "run"), bars)
	}
	ref, err := plotter.NewLine(plotter.XYs{{X: 1, Y: -0.5}, {X: 1, Y: float64(len(names)) - 0.5}})
	if err != nil {
		return err
	}
	ref.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(ref)
	p.X.Min, p.X.Max = 0, maxV*1.1
	p.NominalY(names...)
	p.Legend.Top = true
	height := vg.Length(len(names))*width*vg.Length(len(labels)+1) + 2*vg.Inch
	return p.Save(10*vg.Inch, height, file)
}

func cmpOr(s, def string) string { return cmp.Or(s, def) }

func reportCommand() *cobra.Command {
	var png, md string
	cmd := &cobra.Command{
		Use:   "report RESULTS.jsonl...",
		Short: "Print the livegate/Centrifugo comparison table and draw its chart",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			results, err := readResults(args)
			if err != nil {
				return err
			}
			rows := compare(results)
			writeTable(cmd.OutOrStdout(), rows)
			if md != "" {
				f, err := os.Create(md)
				if err != nil {
					return err
				}
				writeTable(f, rows)
				if err := f.Close(); err != nil {
					return err
				}
			}
			if png != "" {
				return writeChart(png, rows)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&png, "png", "", "write the chart to this PNG file")
	cmd.Flags().StringVar(&md, "md", "", "write the table to this Markdown file too")
	return cmd
}
