package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
)

// printJSON writes v as one indented JSON document to stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns to stdout.
type table struct {
	tw *tabwriter.Writer
}

// newTable starts a table with the given column headers.
func (a *app) newTable(headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)}
	t.row(headers...)
	return t
}

// row adds a row; empty cells print as "-".
func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

// flush writes the table out.
func (t *table) flush() error { return t.tw.Flush() }

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
