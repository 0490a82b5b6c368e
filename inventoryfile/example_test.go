package inventoryfile_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/harmonia-ml/harmonia/internal/docdb"
	"github.com/harmonia-ml/harmonia/inventoryfile"
)

// Import an inventory twice: the second import finds everything
// unchanged and writes nothing. Rejected entries are reported with their
// section, index, key, field and reason.
func ExampleImport() {
	ctx := context.Background()
	store, done := docdb.Store(ctx, nil)
	defer done()
	const inventory = `{
	  "format_version": 1,
	  "licenses": [{"spdx_id": "Apache-2.0", "commercial_use": true}],
	  "artifacts": [
	    {"name": "resnet50", "version": "1.2.0", "path": "models/resnet50.onnx", "size_bytes": 102400,
	     "hashes": {"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}, "license": "Apache-2.0"},
	    {"name": "bert", "version": "1.0.0", "path": "models/bert.onnx", "license": "GPL-3.0-only"}
	  ],
	  "versions": [{"version_tag": "2026.11.0", "artifacts": ["resnet50@1.2.0"], "published_by": "ml-platform"}]
	}`
	for range 2 {
		rep, err := inventoryfile.Import(ctx, store, strings.NewReader(inventory), nil)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("artifacts %+v, versions %+v\n", rep.Artifacts, rep.Versions)
		for _, r := range rep.Rejections {
			fmt.Println("  rejected:", r)
		}
	}
	// Output:
	// artifacts {Inserted:1 Updated:0 Unchanged:0 Rejected:1}, versions {Inserted:1 Updated:0 Unchanged:0 Rejected:0}
	//   rejected: artifacts[1] bert@1.0.0: license: no license with spdx_id GPL-3.0-only in the database nor earlier in the file
	// artifacts {Inserted:0 Updated:0 Unchanged:1 Rejected:1}, versions {Inserted:0 Updated:0 Unchanged:1 Rejected:0}
	//   rejected: artifacts[1] bert@1.0.0: license: no license with spdx_id GPL-3.0-only in the database nor earlier in the file
}

// A dry run reads and checks the whole file against the database and says
// what an import would do, writing nothing. A field of the wrong type is
// named as the file spells it.
func ExampleImport_dryRun() {
	ctx := context.Background()
	store, done := docdb.Store(ctx, nil)
	defer done()
	const inventory = `{
	  "format_version": 1,
	  "licenses": [{"spdx_id": "MIT", "commercial_use": true}],
	  "artifacts": [
	    {"name": "resnet50", "version": "1.2.0", "path": "models/resnet50.onnx", "size_bytes": 1.5, "license": "MIT"},
	    {"name": "bert", "version": "1.0.0", "path": "models/bert.onnx", "license": "MIT", "tags": ["nlp"]}
	  ]
	}`
	rep, err := inventoryfile.Import(ctx, store, strings.NewReader(inventory), &inventoryfile.ImportOptions{DryRun: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("dry run: %t, licenses %+v, artifacts %+v\n", rep.DryRun, rep.Licenses, rep.Artifacts)
	for _, r := range rep.Rejections {
		fmt.Println("  rejected:", r)
	}
	// Output:
	// dry run: true, licenses {Inserted:1 Updated:0 Unchanged:0 Rejected:0}, artifacts {Inserted:1 Updated:0 Unchanged:0 Rejected:1}
	//   rejected: artifacts[0] resnet50@1.2.0: size_bytes: must be a whole number, not number 1.5
}

// Export writes the inventory back out in canonical form: sorted by key,
// indented, empty optional fields left out. The same data always gives
// the same bytes.
func ExampleExport() {
	ctx := context.Background()
	store, done := docdb.Store(ctx, nil)
	defer done()
	const inventory = `{"format_version": 1,
	  "licenses": [{"spdx_id": "mit", "commercial_use": true}],
	  "artifacts": [{"name": "resnet50", "version": "1.2.0", "path": "models/resnet50.onnx", "size_bytes": 102400,
	    "hashes": {"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}, "license": "MIT",
	    "created_at": "2026-10-01T12:00:00Z"}]}`
	if _, err := inventoryfile.Import(ctx, store, strings.NewReader(inventory), nil); err != nil {
		log.Fatal(err)
	}
	rep, err := inventoryfile.Export(ctx, store, os.Stdout, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d artifact, %d bytes\n", rep.Artifacts, rep.Bytes)
	// Output:
	// {
	//   "format_version": 1,
	//   "licenses": [
	//     {
	//       "spdx_id": "MIT",
	//       "commercial_use": true
	//     }
	//   ],
	//   "datasets": [],
	//   "artifacts": [
	//     {
	//       "name": "resnet50",
	//       "version": "1.2.0",
	//       "path": "models/resnet50.onnx",
	//       "size_bytes": 102400,
	//       "hashes": {
	//         "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	//       },
	//       "license": "MIT",
	//       "created_at": "2026-10-01T12:00:00Z"
	//     }
	//   ],
	//   "versions": []
	// }
	// 1 artifact, 479 bytes
}
