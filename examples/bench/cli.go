package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	hbench "github.com/harmonia-ml/harmonia/internal/bench"
)

// benchCLI runs the harmonia command as a user would, on its default
// embedded server (replica-set mode) in a temporary data directory: an
// import of c.cliArtifacts artifacts, a publish of c.cliPublish of them
// (one --artifact each), `artifacts list --json` of all of them, and, on
// a fresh directory, an import of c.cliBigArtifacts artifacts with
// c.cliVersions versions of c.cliPublish artifacts each. Each figure is
// the command's wall time; the detail gives its CPU time (user+system,
// server included, as it runs in the process) and the load average,
// since the machine may be shared.
func benchCLI(ctx context.Context, _ *bench, c config) ([]figure, error) {
	dir, err := os.MkdirTemp("", "harmonia-bench-cli-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	bin := filepath.Join(dir, "harmonia")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/harmonia-ml/harmonia/cmd/harmonia")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the harmonia command: %w\n%s", err, out)
	}
	small, err := generate(filepath.Join(dir, "small.json"), hbench.GenerateOptions{Artifacts: c.cliArtifacts})
	if err != nil {
		return nil, err
	}
	big, err := generate(filepath.Join(dir, "big.json"), hbench.GenerateOptions{Artifacts: c.cliBigArtifacts, Versions: c.cliVersions, VersionArtifacts: c.cliPublish})
	if err != nil {
		return nil, err
	}
	run := func(data string, args ...string) (*cliRun, error) {
		return runCLI(ctx, bin, append([]string{"--data", filepath.Join(dir, data)}, args...)...)
	}

	var figs []figure
	imp, err := run("d1", "import", small)
	if err != nil {
		return nil, err
	}
	figs = append(figs, imp.figure("cli_import_s", fmt.Sprintf("harmonia import of %d artifacts", c.cliArtifacts)))

	pub := []string{"publish", "bench.1", "--by", "bench"}
	for i := range c.cliPublish {
		// Spread over the inventory, not its first entries.
		pub = append(pub, "--artifact", fmt.Sprintf("model-%07d@1.0.0", i*c.cliArtifacts/c.cliPublish))
	}
	p, err := run("d1", pub...)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(p.stdout, fmt.Sprintf("(%d artifacts", c.cliPublish)) {
		return nil, fmt.Errorf("publish printed %q", p.stdout)
	}
	figs = append(figs, p.figure(fmt.Sprintf("cli_publish_s_k%d", c.cliPublish), fmt.Sprintf("harmonia publish of %d among %d artifacts", c.cliPublish, c.cliArtifacts)))

	l, err := run("d1", "artifacts", "list", "--json")
	if err != nil {
		return nil, err
	}
	var listed struct {
		Artifacts []json.RawMessage `json:"artifacts"`
	}
	if err := json.Unmarshal([]byte(l.stdout), &listed); err != nil || len(listed.Artifacts) != c.cliArtifacts {
		return nil, fmt.Errorf("artifacts list --json: %d artifacts, want %d (%v)", len(listed.Artifacts), c.cliArtifacts, err)
	}
	figs = append(figs, l.figure("cli_list_json_s", fmt.Sprintf("harmonia artifacts list --json of %d", c.cliArtifacts)))

	bi, err := run("d2", "import", big)
	if err != nil {
		return nil, err
	}
	figs = append(figs, bi.figure("cli_import_versions_s", fmt.Sprintf("harmonia import of %d artifacts, %d versions of %d", c.cliBigArtifacts, c.cliVersions, c.cliPublish)))
	return figs, nil
}

// generate writes a generated inventory to file and returns its path.
func generate(file string, o hbench.GenerateOptions) (string, error) {
	f, err := os.Create(file)
	if err != nil {
		return "", err
	}
	if _, err := hbench.GenerateInventory(f, o); err != nil {
		_ = f.Close()
		return "", err
	}
	return file, f.Close()
}

// cliRun is one run of the command.
type cliRun struct {
	stdout    string
	wall, cpu time.Duration
	load      string // the 1-minute load average when it ended
}

func (r *cliRun) figure(key, what string) figure {
	return figure{key, what, r.wall.Seconds(), "%.2f", fmt.Sprintf("s wall; %.2fs CPU; load %s", r.cpu.Seconds(), r.load)}
}

// runCLI runs the harmonia binary with args and requires exit code 0.
func runCLI(ctx context.Context, bin string, args ...string) (*cliRun, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	err := cmd.Run()
	wall := time.Since(t0)
	if err != nil {
		return nil, fmt.Errorf("harmonia %s: %w\n%s", args[2], err, stderr.String())
	}
	r := &cliRun{stdout: stdout.String(), wall: wall, load: "?"}
	if ps := cmd.ProcessState; ps != nil {
		r.cpu = ps.UserTime() + ps.SystemTime()
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.load = strings.Fields(string(b))[0]
	}
	return r, nil
}
