package cli

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// serving runs harmonia serve with args until the test ends and returns
// its base URL, its stderr and a function that stops it and returns its
// exit code.
func (f *fixture) serving(env map[string]string, args ...string) (string, *syncBuffer, func() int) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Execute(ctx, append(append(append([]string{}, f.conn...), "serve", "--addr", "127.0.0.1:0"), args...), &out, &errOut,
			func(k string) string { return env[k] })
	}()
	addr := regexp.MustCompile(`listening on (http://\S+)`)
	var base string
	require.Eventually(f.t, func() bool {
		m := addr.FindStringSubmatch(errOut.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	}, 2*time.Minute, 20*time.Millisecond, "serve did not start: %s", errOut.String())
	stopped := false
	stop := func() int {
		if stopped {
			return ExitOK
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(time.Minute):
			f.t.Fatal("serve did not stop")
		}
		return -1
	}
	f.t.Cleanup(func() { stop() })
	return base, &errOut, stop
}

func request(t *testing.T, method, url, token, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	return res.StatusCode
}

func TestServe(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const secret = "serve-test-secret-0123"
	file := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(file, []byte("# the CI's token\nci write "+secret+"\n"), 0o600))
	base, errOut, stop := f.serving(nil, "--tokens", file)
	require.Contains(t, errOut.String(), "1 token(s): writes need a bearer token")
	require.Equal(t, http.StatusOK, request(t, "GET", base+"/openapi.json", "", ""))
	require.Equal(t, http.StatusUnauthorized, request(t, "GET", base+"/licenses", "", ""))
	require.Equal(t, http.StatusCreated, request(t, "POST", base+"/licenses", secret, `{"spdx_id": "MIT", "commercial_use": true}`))
	require.Equal(t, http.StatusForbidden, request(t, "POST", base+"/versions", secret, `{"version_tag": "1"}`))
	require.Equal(t, ExitOK, stop())
	require.Contains(t, errOut.String(), "harmonia serve: stopped")
	require.NotContains(t, errOut.String(), secret)

	// Tokens from the environment; --read-only refuses writes whatever the token.
	base, errOut, stop = f.serving(map[string]string{EnvTokens: "a read " + secret + "-a;b admin " + secret + "-b"}, "--read-only")
	require.Contains(t, errOut.String(), "read-only")
	require.Equal(t, http.StatusOK, request(t, "GET", base+"/licenses", secret+"-a", ""))
	require.Equal(t, http.StatusForbidden, request(t, "POST", base+"/licenses", secret+"-b", `{"spdx_id": "Apache-2.0", "commercial_use": true}`))
	require.Equal(t, ExitOK, stop())

	// Without tokens: reads only, and the start line says so.
	base, errOut, stop = f.serving(nil)
	require.Contains(t, errOut.String(), "no tokens configured: serving reads only, every write answers 401")
	require.Equal(t, http.StatusOK, request(t, "GET", base+"/licenses", "", ""))
	require.Equal(t, http.StatusUnauthorized, request(t, "POST", base+"/licenses", "", `{"spdx_id": "Apache-2.0", "commercial_use": true}`))
	require.Equal(t, ExitOK, stop())

	bad := filepath.Join(t.TempDir(), "bad")
	require.NoError(t, os.WriteFile(bad, []byte("ci root "+secret+"\n"), 0o600))
	r := f.fails(ExitInvalid, "serve", "--tokens", bad)
	require.Contains(t, r.stderr, "unknown scope")
	require.NotContains(t, r.stderr, secret)
}
