// Package clidocs renders the command-line reference of a urfave/cli
// application, as Markdown and as a man page, so that the reference in docs/
// is generated from the CLI definition and a test can tell when it is stale.
package clidocs
