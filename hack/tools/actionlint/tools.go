//go:build tools

// Package tools pins the actionlint command that build.sh compiles from this module.
package tools

import _ "github.com/rhysd/actionlint/cmd/actionlint"
