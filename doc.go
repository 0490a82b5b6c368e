// Package harmonia is the MongoDB data layer of a model inventory.
//
// Go services import it to record model artifacts, their licenses and
// datasets as typed, validated entities; to publish immutable inventory
// versions atomically; to queue and run download, validate and inference
// jobs; and to migrate their data between schema versions.
package harmonia
