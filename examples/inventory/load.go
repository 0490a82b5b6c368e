package inventory

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/inventoryfile"
)

// Load copies FS into dir (the files a validate handler rooted there
// reads) and imports the inventory file into store. Any rejected entry is
// an error: the sample is known to be valid.
func Load(ctx context.Context, store *harmonia.Store, dir string) (*inventoryfile.ImportReport, error) {
	if err := os.CopyFS(dir, FS); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(dir, FileName))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rep, err := inventoryfile.Import(ctx, store, f, nil)
	if err != nil {
		return nil, err
	}
	if rep.Rejected() > 0 {
		return nil, fmt.Errorf("the sample inventory had %d rejected entries: %v", rep.Rejected(), rep.Rejections)
	}
	return rep, nil
}
