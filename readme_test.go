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
// declaring them: a snippet is type-checked as the body of a function that
// takes those of them it uses. A snippet that uses a new one fails the
// test naming it ("undefined: x"); declare it here.
var readmeFree = []string{"ctx context.Context", "runCtx context.Context", "client *mongo.Client",
	"db *mongo.Database", "logger *slog.Logger", "store *harmonia.Store", "sum string",
	"ids []bson.ObjectID", "req harmonia.PublishRequest", "audit *mongo.Collection",
	"deploy func(to, digest string)", "outcomes []*harmonia.LeaseWrite", "file io.Reader",
	"a *harmonia.ModelArtifact", "auth httpapi.Authorizer", "mux *http.ServeMux", "srv *http.Server"}

// readmeImports are the packages the snippets may use: a snippet's file
// imports those whose name it uses ("bson." for
// go.mongodb.org/mongo-driver/v2/bson). A snippet's own import lines are
// kept too.
var readmeImports = []string{"context", "errors", "fmt", "io", "log/slog", "net/http", "testing", "time",
	"go.mongodb.org/mongo-driver/v2/bson", "go.mongodb.org/mongo-driver/v2/mongo",
	"github.com/harmonia-ml/harmonia", "github.com/harmonia-ml/harmonia/bucket",
	"github.com/harmonia-ml/harmonia/harmoniatest", "github.com/harmonia-ml/harmonia/httpapi",
	"github.com/harmonia-ml/harmonia/inventoryfile",
	"github.com/harmonia-ml/harmonia/migrate", "github.com/harmonia-ml/harmonia/worker"}

// readmeFile returns the Go file of snippet i: its imports, then the
// snippet as a file of declarations when it starts with "func ", else as
// the body of a function taking readmeFree. Line directives point the
// compiler's messages at the README's lines.
func readmeFile(i int, snippet string, line int) string {
	var imports, body strings.Builder
	lines := strings.Split(snippet, "\n")
	for len(lines) > 0 && (strings.HasPrefix(lines[0], "import ") || strings.TrimSpace(lines[0]) == "") {
		imports.WriteString(lines[0] + "\n")
		lines, line = lines[1:], line+1
	}
	code := strings.Join(lines, "\n")
	var params []string
	if !strings.HasPrefix(code, "func ") {
		for _, f := range readmeFree {
			if regexp.MustCompile(`\b` + strings.Fields(f)[0] + `\b`).MatchString(code) {
				params = append(params, f)
			}
		}
	}
	uses := code + strings.Join(params, ", ")
	for _, p := range readmeImports {
		name := p[strings.LastIndex(p, "/")+1:]
		if regexp.MustCompile(`\b` + name + `\.`).MatchString(uses) {
			fmt.Fprintf(&imports, "import %q\n", p)
		}
	}
	if strings.HasPrefix(code, "func ") {
		fmt.Fprintf(&body, "//line README.md:%d\n%s", line, code)
	} else {
		fmt.Fprintf(&body, "func snippet%d(%s) {\n\t{\n//line README.md:%d\n%s\n\t}\n}\n", i, strings.Join(params, ", "), line, code)
	}
	return "package snippets\n\n" + imports.String() + "\n" + body.String()
}

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
// taking readmeFree (see readmeFile). The compiler is asked for every
// error (-gcflags=-e); the snippets' unused variables (and imports, for
// a package named only in a comment) are the only ones allowed.
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
	for i, b := range blocks {
		src := readmeFile(i, b, lines[i])
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
