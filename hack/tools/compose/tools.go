//go:build tools

// Package tools pins compose-go's validator (the Compose Specification's reference loader:
// schema, interpolation, normalization and consistency checks) that build.sh compiles.
package tools

import _ "github.com/compose-spec/compose-go/v2/cmd"
