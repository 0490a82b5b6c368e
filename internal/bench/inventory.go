package bench

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/harmonia-ml/harmonia/inventoryfile"
)

// GenerateOptions says what [GenerateInventory] writes.
type GenerateOptions struct {
	// Artifacts is how many artifacts to write; 0 means as many as fit in
	// TargetBytes.
	Artifacts int
	// TargetBytes, when set, stops adding artifacts once the file has
	// reached about this size.
	TargetBytes int64
	// Versions is how many versions to write, each of one dataset and
	// VersionArtifacts artifacts.
	Versions int
	// VersionArtifacts is how many artifacts each version holds: version
	// i holds the VersionArtifacts that follow those of version i-1,
	// wrapping around at the end of the artifacts. Defaults to the first
	// 100 artifacts (or all of them when fewer), the same in every
	// version.
	VersionArtifacts int
}

// Generated says what GenerateInventory wrote.
type Generated struct {
	// Licenses, Datasets, Artifacts and Versions count the entries of
	// each section.
	Licenses, Datasets, Artifacts, Versions int
	// Bytes is the file's size.
	Bytes int64
}

// Licenses, datasets and times of generated inventories.
var (
	genLicenses = []inventoryfile.License{
		{SPDXID: "Apache-2.0", TextPath: "licenses/Apache-2.0.txt", CommercialUse: true},
		{SPDXID: "MIT", TextPath: "licenses/MIT.txt", CommercialUse: true},
		{SPDXID: "CC-BY-NC-4.0", TextPath: "licenses/CC-BY-NC-4.0.txt", Notes: "non-commercial research only"},
	}
	genDatasets = 4
	genTime     = time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
)

// GenerateInventory writes a valid combined inventory file to w: three
// licenses, four datasets, the artifacts opts asks for (each with its own
// name, path, size and sha256, tags, a dataset and a commercial license)
// and opts.Versions versions. It writes as it goes: any size takes the
// same memory. Benchmarks and the examples/bench program use it.
func GenerateInventory(w io.Writer, opts GenerateOptions) (*Generated, error) {
	if opts.Artifacts < 0 || opts.TargetBytes < 0 || opts.Versions < 0 || (opts.Artifacts == 0 && opts.TargetBytes == 0) {
		return nil, errors.New("GenerateOptions needs a positive Artifacts or TargetBytes")
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	cw := &countingWriter{w: bw}
	g := &Generated{}
	enc := json.NewEncoder(cw)
	_, _ = fmt.Fprintf(cw, `{"format_version": %d`, inventoryfile.FormatVersion)
	sections := []struct {
		name  string
		count *int
		more  func(i int) bool
		item  func(i int) any
	}{
		{inventoryfile.SectionLicenses, &g.Licenses, func(i int) bool { return i < len(genLicenses) }, func(i int) any { return genLicenses[i] }},
		{inventoryfile.SectionDatasets, &g.Datasets, func(i int) bool { return i < genDatasets }, func(i int) any { return genDataset(i) }},
		{inventoryfile.SectionArtifacts, &g.Artifacts, func(i int) bool {
			return (opts.Artifacts == 0 || i < opts.Artifacts) && (opts.TargetBytes == 0 || cw.n < opts.TargetBytes)
		}, func(i int) any { return genArtifact(i) }},
		{inventoryfile.SectionVersions, &g.Versions, func(i int) bool { return i < opts.Versions }, func(i int) any { return genVersion(i, g.Artifacts, opts.VersionArtifacts) }},
	}
	for _, s := range sections {
		_, _ = fmt.Fprintf(cw, ",\n%q: [", s.name)
		for i := 0; s.more(i); i++ {
			if i > 0 {
				_, _ = io.WriteString(cw, ",")
			}
			_ = enc.Encode(s.item(i)) // errors stay in cw.err
			*s.count = i + 1
		}
		_, _ = io.WriteString(cw, "]")
	}
	_, _ = io.WriteString(cw, "}\n")
	if cw.err == nil {
		cw.err = bw.Flush()
	}
	if cw.err != nil {
		return nil, fmt.Errorf("write the inventory: %w", cw.err)
	}
	g.Bytes = cw.n
	return g, nil
}
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func genDataset(i int) inventoryfile.Dataset {
	name := fmt.Sprintf("dataset-%d", i)
	return inventoryfile.Dataset{Name: name, Version: "2026.1", Path: "s3://harmonia-data/" + name + ".tar", SizeBytes: int64(1+i) << 20,
		Hashes: inventoryfile.Hashes{SHA256: sha256Hex(name)}, License: genLicenses[i%2].SPDXID, Tags: []string{"generated", "vision"}, CreatedBy: "generator"}
}

func genArtifact(i int) inventoryfile.Artifact {
	name := fmt.Sprintf("model-%07d", i)
	return inventoryfile.Artifact{Name: name, Version: "1.0.0", Path: "models/" + name + ".onnx", SizeBytes: int64(i)*1024 + 1,
		Hashes: inventoryfile.Hashes{SHA256: sha256Hex(name)}, License: genLicenses[i%2].SPDXID, Tags: []string{"vision", "onnx", fmt.Sprintf("batch-%d", i/1000)},
		Notes: "generated for benchmarks: a classifier fine-tuned on the dataset it names", CreatedBy: "generator",
		Datasets:  []string{genDataset(i%genDatasets).Name + "@2026.1"},
		CreatedAt: genTime.Add(time.Duration(i) * time.Second).Format(time.RFC3339),
	}
}

// genVersion returns version i of a file of n artifacts: the first 100
// of them when per is 0, else the per artifacts after version i-1's.
func genVersion(i, n, per int) inventoryfile.Version {
	v := inventoryfile.Version{VersionTag: fmt.Sprintf("gen.%d", i), PublishedBy: "generator",
		PublishedAt: genTime.AddDate(0, 1, i).Format(time.RFC3339), Datasets: []string{genDataset(0).Name + "@2026.1"}}
	first, count := 0, min(n, 100)
	if per > 0 {
		first, count = i*per, min(n, per)
	}
	for j := range count {
		v.Artifacts = append(v.Artifacts, genArtifact((first+j)%n).Name+"@1.0.0")
	}
	return v
}

// countingWriter counts bytes written and keeps the first error.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

// Write writes p to the underlying writer, counting it.
func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}
