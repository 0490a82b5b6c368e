// Command harmonia operates a harmonia inventory from a terminal or a CI
// script: migrations, import and export of the combined inventory file,
// publishing, versions and their differences, aliases, integrity checks,
// jobs and workers, and a development database.
//
// Install it with
//
//	go install github.com/harmonia-ml/harmonia/cmd/harmonia@latest
//
// and run `harmonia --help` for the commands and the exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	// The bucket openers the command serves: s3:// (also MinIO, Ceph,
	// R2 and GCS's interoperability endpoint), az://, file://, mem://.
	_ "github.com/harmonia-ml/harmonia/bucket/all"
	"github.com/harmonia-ml/harmonia/cmd/harmonia/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
