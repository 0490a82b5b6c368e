// Package inventory ships harmonia's sample inventory: the combined
// inventory file (combined_inventory.json) with the license texts, dataset
// and model files it references, whose sizes and sha256 digests match.
// The quickstart and the service copy it to a directory and import it
// ([Load]).
package inventory

import "embed"

// FileName is the inventory file's name within FS.
const FileName = "combined_inventory.json"

// FS holds the inventory file and the files it references, at the paths
// the file names (relative to its directory).
//
//go:embed combined_inventory.json licenses datasets models
var FS embed.FS
