package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/mattn/go-runewidth"
	"github.com/schollz/progressbar/v3"
)

// printJSON writes v as one indented JSON document to stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes columns to stdout aligned by display width (go-runewidth:
// a CJK character takes two columns, a combining accent none), so that
// names in any script line up in a terminal.
type table struct {
	out  io.Writer
	rows [][]string
}

// newTable starts a table with the given column headers.
func (a *app) newTable(headers ...string) *table {
	t := &table{out: a.stdout}
	t.row(headers...)
	return t
}

// row adds a row; empty cells print as "-".
func (t *table) row(cells ...string) {
	r := make([]string, len(cells))
	for i, c := range cells {
		if c == "" {
			c = "-"
		}
		r[i] = c
	}
	t.rows = append(t.rows, r)
}

// tableGap is the space between two columns.
const tableGap = 2

// flush writes the table out.
func (t *table) flush() error {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], runewidth.StringWidth(c))
		}
	}
	var b strings.Builder
	for _, r := range t.rows {
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-runewidth.StringWidth(c)+tableGap))
			}
		}
		b.WriteByte('\n')
	}
	t.rows = nil
	_, err := io.WriteString(t.out, b.String())
	return err
}

// plural returns "1 artifact", "2 artifacts", "3 entries": n and the noun,
// in the plural unless n is 1.
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if base, ok := strings.CutSuffix(noun, "y"); ok {
		return fmt.Sprintf("%d %sies", n, base)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// timeText formats t for tables: UTC, to the second; "" for the zero time.
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// timePtrText is timeText for an optional time.
func timePtrText(t *time.Time) string {
	if t == nil {
		return ""
	}
	return timeText(*t)
}

// progress reports long work on stderr: a bar when stderr is a terminal,
// plain lines otherwise.
type progress struct {
	bar   *progressbar.ProgressBar
	out   io.Writer
	label string
}

// stderrIsTerminal reports whether the run's stderr is a terminal.
func (a *app) stderrIsTerminal() bool {
	f, ok := a.stderr.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// newProgress starts reporting the work label. max is its total (bytes
// when bytes is true, else items), -1 when unknown.
func (a *app) newProgress(label string, max int64, bytes bool) *progress {
	p := &progress{out: a.stderr, label: label}
	if a.stderrIsTerminal() {
		p.bar = progressbar.NewOptions64(max,
			progressbar.OptionSetDescription(label),
			progressbar.OptionSetWriter(a.stderr),
			progressbar.OptionShowBytes(bytes),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionThrottle(65*time.Millisecond))
	}
	return p
}

// update sets the work done so far; detail is the plain line's text.
func (p *progress) update(done int64, detail string) {
	if p.bar != nil {
		_ = p.bar.Set64(done)
		return
	}
	fmt.Fprintf(p.out, "%s: %s\n", p.label, detail)
}

// finish ends the bar.
func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		_ = p.bar.Exit()
	}
}
