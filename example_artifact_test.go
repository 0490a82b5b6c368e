package harmonia_test

import (
	"context"
	"fmt"
	"log"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/internal/docdb"
)

// Create a license and an artifact under it.
func ExampleStore_CreateArtifact() {
	ctx := context.Background()
	store, done := docdb.Store(ctx, nil)
	defer done()

	lic := &harmonia.License{SPDXID: "Apache-2.0", CommercialUse: true}
	if err := store.CreateLicense(ctx, lic); err != nil {
		log.Fatal(err)
	}
	a := &harmonia.ModelArtifact{
		Name: "resnet50", Version: "1.2.0", Path: "models/resnet50.onnx", SizeBytes: 102400,
		Hashes:    harmonia.Hashes{SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		LicenseID: lic.ID, Tags: []string{"vision", "onnx"}, CreatedBy: "ml-platform",
	}
	if err := store.CreateArtifact(ctx, a); err != nil {
		log.Fatal(err)
	}
	got, err := store.GetArtifactByKey(ctx, "resnet50", "1.2.0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Key(), got.Path, got.SchemaVersion, got.ID == a.ID)
	// Output: resnet50@1.2.0 models/resnet50.onnx 2 true
}

// List artifacts with their licenses: two server commands for the whole
// page, however many artifacts it holds.
func ExampleStore_ListArtifactsWithLicenses() {
	ctx := context.Background()
	store, done := docdb.Store(ctx, nil)
	defer done()

	for _, spdx := range []string{"MIT", "Apache-2.0"} {
		lic := &harmonia.License{SPDXID: spdx}
		if err := store.CreateLicense(ctx, lic); err != nil {
			log.Fatal(err)
		}
		a := &harmonia.ModelArtifact{Name: "model-" + spdx, Version: "1", Path: "models/" + spdx + ".bin", LicenseID: lic.ID}
		if err := store.CreateArtifact(ctx, a); err != nil {
			log.Fatal(err)
		}
	}
	page, err := store.ListArtifactsWithLicenses(ctx, harmonia.ArtifactFilter{NamePrefix: "model-"})
	if err != nil {
		log.Fatal(err)
	}
	for _, item := range page.Items {
		fmt.Println(item.Artifact.Name, "is under", item.License.SPDXID)
	}
	// Output:
	// model-MIT is under MIT
	// model-Apache-2.0 is under Apache-2.0
}

// Page through the licenses that allow commercial use, two at a time.
func ExampleStore_ListLicenses() {
	ctx := context.Background()
	store, done := docdb.Store(ctx, nil)
	defer done()

	for _, l := range []harmonia.License{{SPDXID: "MIT", CommercialUse: true}, {SPDXID: "CC-BY-NC-4.0"},
		{SPDXID: "Apache-2.0", CommercialUse: true}, {SPDXID: "BSD-3-Clause", CommercialUse: true}} {
		if err := store.CreateLicense(ctx, &l); err != nil {
			log.Fatal(err)
		}
	}
	commercial := true
	f := harmonia.LicenseFilter{CommercialUse: &commercial, Limit: 2}
	for page := 1; ; page++ {
		p, err := store.ListLicenses(ctx, f)
		if err != nil {
			log.Fatal(err)
		}
		for _, l := range p.Items {
			fmt.Println(page, l.SPDXID)
		}
		if !p.More() {
			break
		}
		f.After = p.Next
	}
	// Output:
	// 1 MIT
	// 1 Apache-2.0
	// 2 BSD-3-Clause
}

// Insert many artifacts with one call: each is checked as CreateArtifact
// checks one, and the call says, item by item, what was refused.
func ExampleBulk_InsertArtifacts() {
	ctx := context.Background()
	store, done := docdb.Store(ctx, nil)
	defer done()

	arts := []*harmonia.ModelArtifact{
		{Name: "resnet50", Version: "1.2.0", Path: "models/resnet50.onnx"},
		{Name: "bert", Version: "1.0.0", Path: "../outside.onnx"},
		{Name: "resnet50", Version: "1.2.0", Path: "models/again.onnx"},
	}
	errs, err := store.Bulk().InsertArtifacts(ctx, arts)
	if err != nil {
		log.Fatal(err)
	}
	for i, e := range errs {
		if e == nil {
			fmt.Println(arts[i].Key(), "inserted")
			continue
		}
		fmt.Println(arts[i].Key(), harmonia.ErrorCode(e))
	}
	// Output:
	// resnet50@1.2.0 inserted
	// bert@1.0.0 invalid
	// resnet50@1.2.0 conflict
}
