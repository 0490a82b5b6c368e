package harmonia_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// readmeFree declares the names the README's snippets use without
// declaring them: each snippet is type-checked as the body of a function
// that takes them. A snippet that uses a new one fails the test naming it
// ("undefined: x"); declare it here.
const readmeFree = `ctx, runCtx context.Context, client *mongo.Client, db *mongo.Database, logger *slog.Logger,
	store *harmonia.Store, sum string, ids []bson.ObjectID, req harmonia.PublishRequest,
	audit *mongo.Collection, deploy func(to, digest string), outcomes []*harmonia.LeaseWrite, file io.Reader,
	a *harmonia.ModelArtifact`

// readmeImports are the packages the snippets may use.
var readmeImports = []string{"context", "errors", "fmt", "io", "log/slog", "testing", "time",
	"go.mongodb.org/mongo-driver/v2/bson", "go.mongodb.org/mongo-driver/v2/mongo",
	"github.com/harmonia-ml/harmonia", "github.com/harmonia-ml/harmonia/harmoniatest",
	"github.com/harmonia-ml/harmonia/inventoryfile", "github.com/harmonia-ml/harmonia/migrate",
	"github.com/harmonia-ml/harmonia/worker"}

// readmeSnippets returns the README's ```go blocks, each with the line it
// starts on.
func readmeSnippets(t *testing.T) (blocks []string, lines []int) {
	t.Helper()
	f, err := os.ReadFile("README.md")
	require.NoError(t, err)
	var cur *strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(f))
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(l, "```go"):
			cur = new(strings.Builder)
			lines = append(lines, n+1)
		case cur != nil && strings.HasPrefix(l, "```"):
			blocks, cur = append(blocks, cur.String()), nil
		case cur != nil:
			cur.WriteString(l + "\n")
		}
	}
	require.NoError(t, sc.Err())
	return blocks, lines
}

// TestReadmeSnippetsCompile: every ```go block of the README compiles
// against the current API. A block of declarations (one that starts with
// "func ") is a file of its own; any other is the body of a function
// taking readmeFree. The compiler is asked for every error (-gcflags=-e);
// the snippets' unused variables and imports are the only ones allowed.
func TestReadmeSnippetsCompile(t *testing.T) {
	t.Parallel()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("needs the go command to compile the README's snippets: %v", err)
	}
	blocks, lines := readmeSnippets(t)
	require.NotEmpty(t, blocks, "the README has no ```go block")
	// Inside the module, so that its imports resolve; "_" keeps it out of ./...
	dir, err := os.MkdirTemp(".", "_readme")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	var imports strings.Builder
	for _, p := range readmeImports {
		fmt.Fprintf(&imports, "\t%q\n", p)
	}
	for i, b := range blocks {
		var src string
		if strings.HasPrefix(b, "func ") {
			src = fmt.Sprintf("package snippets\n\nimport (\n%s)\n\n//line README.md:%d\n%s", imports.String(), lines[i], b)
		} else {
			src = fmt.Sprintf("package snippets\n\nimport (\n%s)\n\nfunc snippet%d(%s) {\n\t{\n//line README.md:%d\n%s\n\t}\n}\n",
				imports.String(), i, readmeFree, lines[i], b)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("snippet%d.go", i)), []byte(src), 0o644))
	}
	cmd := exec.Command(goCmd, "build", "-gcflags=-e", "-o", os.DevNull, "./"+filepath.ToSlash(dir))
	out, _ := cmd.CombinedOutput()
	allowed := regexp.MustCompile(`declared and not used|imported and not used|^#|^\s*$`)
	var wrong []string
	for _, l := range strings.Split(string(out), "\n") {
		if !allowed.MatchString(l) {
			wrong = append(wrong, l)
		}
	}
	require.Empty(t, wrong, "README snippets that do not compile (README.md:line); go build said:\n%s", out)
}
